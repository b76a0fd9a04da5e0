"""Bulk operations: a shop's whole history as one JSONL file, read as a stream.

Start with `bulkOperationRunQuery`, poll `bulkOperation(id:)` with backoff
until it finishes (or until the `bulk_operations/finish` webhook says it has),
then read the result line by line. The result URL points at storage outside
Shopify's Admin API (a signed URL): it is fetched without the access token,
and never logged (its signature is a credential).

Reading the result is bounded whatever the file holds: a line longer than
the maximum is skipped as it streams (the caller counts it as a failed
object) without ever being held whole, and the whole download has a
deadline, so a result served slowly cannot keep a run going.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import msgspec

from app.shopify.client import AdminClient, answer_part
from app.shopify.errors import ExportFailed, QueryRefused
from app.shopify.nodes import BulkOperation
from app.shopify.queries import BULK_OPERATION, RUN_BULK_QUERY

log = logging.getLogger("app.shopify")

POLL_FIRST_SECONDS = 1.0
# Polls cost 1 point; waiting longer between them only delays the result.
POLL_MAX_SECONDS = 10.0
# How often the webhook ledger is looked at between two polls.
FINISH_CHECK_SECONDS = 1.0
# A bulk operation may run for days (Shopify's limit is 10); a sync gives up sooner.
WAIT_LIMIT_SECONDS = 6 * 3600.0
DOWNLOAD_ATTEMPTS = 5
IDENTITY = {"Accept-Encoding": "identity"}
_IN_PROGRESS = re.compile(r"already in progress[^g]*(gid://shopify/BulkOperation/\d+)")

# Whether Shopify has announced (bulk_operations/finish) that the operation ended.
FinishedSignal = Callable[[str], Awaitable[bool]]


async def _never_signalled(operation_id: str) -> bool:
    return False


class UserError(msgspec.Struct):
    message: str | None = None


class RunQueryPayload(msgspec.Struct, rename="camel"):
    bulk_operation: BulkOperation | None = None
    user_errors: list[UserError] = []


class RunQueryData(msgspec.Struct, rename="camel"):
    bulk_operation_run_query: RunQueryPayload | None = None


class PollData(msgspec.Struct, rename="camel"):
    bulk_operation: BulkOperation | None = None


async def start_bulk_query(client: AdminClient, query: str) -> BulkOperation:
    """Start a bulk query; if the shop already runs one, wait for it to end and start ours.

    API versions before 2026-01 allow one bulk query per shop at a time; a
    second is refused with a user error naming the running one. That one may
    belong to another run of ours that crashed, or to another app process:
    waiting for it is always safe.
    """
    while True:
        answer = await client.query(RUN_BULK_QUERY, {"query": query}, cost=10)
        data = answer_part(answer.data, RunQueryData, "bulkOperationRunQuery")
        payload = data.bulk_operation_run_query or RunQueryPayload()
        errors = payload.user_errors
        if payload.bulk_operation is not None and not errors:
            return payload.bulk_operation
        message = "; ".join(str(error.message) for error in errors) or "no operation"
        running = _IN_PROGRESS.search(message)
        if running is None:
            raise QueryRefused(f"bulk query refused: {message[:500]}")
        log.info(
            "another bulk query is running; waiting for it",
            extra={"fields": {"shop": client.shop, "operation": running.group(1)}},
        )
        await wait_for_bulk_operation(client, running.group(1))


async def wait_for_bulk_operation(
    client: AdminClient,
    operation_id: str,
    finished_signal: FinishedSignal = _never_signalled,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> BulkOperation:
    """Poll until the operation has finished (completed, failed, canceled or expired)."""
    interval = POLL_FIRST_SECONDS
    waited = 0.0
    while True:
        operation = await poll_bulk_operation(client, operation_id)
        if operation.finished:
            return operation
        if waited > WAIT_LIMIT_SECONDS:
            raise ExportFailed(f"bulk operation still {operation.status} after {waited:.0f} s")
        waited += await _sleep_unless_signalled(operation_id, interval, finished_signal, sleep)
        interval = min(interval * 2, POLL_MAX_SECONDS)


async def poll_bulk_operation(client: AdminClient, operation_id: str) -> BulkOperation:
    answer = await client.query(BULK_OPERATION, {"id": operation_id}, cost=1)
    operation = answer_part(answer.data, PollData, "bulkOperation").bulk_operation
    if operation is None:
        raise ExportFailed(f"bulk operation {operation_id} is unknown to Shopify")
    return operation


async def _sleep_unless_signalled(
    operation_id: str,
    seconds: float,
    finished_signal: FinishedSignal,
    sleep: Callable[[float], Awaitable[None]],
) -> float:
    slept = 0.0
    while slept < seconds:
        step = min(FINISH_CHECK_SECONDS, seconds - slept)
        await sleep(step)
        slept += step
        if await finished_signal(operation_id):
            break
    return slept


@dataclass(frozen=True)
class OversizedLine:
    """A line longer than the maximum, skipped unread: its object counts as failed."""

    size: int


@dataclass(frozen=True)
class DownloadLimits:
    # The whole download, retries included, must end within this many seconds.
    deadline_seconds: float
    # A longer line is skipped as it streams, never held whole.
    max_line_bytes: int


async def result_lines(
    http: httpx.AsyncClient, url: str, limits: DownloadLimits
) -> AsyncIterator[bytes | OversizedLine]:
    """The JSONL result, one line at a time, never held whole in memory.

    A download that breaks off is started again and the lines already given
    are skipped, a bounded number of times, within the deadline. No access
    token is sent: the URL carries its own signature and belongs to another host.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.deadline_seconds
    delivered = 0
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        seen = 0
        try:
            # Uncompressed: a compressed line could grow past any limit in one chunk.
            async with http.stream("GET", url, headers=IDENTITY) as response:
                if response.status_code != 200:
                    raise _DownloadFailed(f"HTTP {response.status_code}")
                chunks = _chunks_until(response, deadline, limits)
                async for line in _lines(chunks, limits.max_line_bytes):
                    seen += 1
                    if seen > delivered:
                        delivered = seen
                        yield line
            return
        except httpx.InvalidURL:
            # Not quoted: a signed URL's query is a credential.
            raise ExportFailed("the bulk result URL Shopify gave is not a valid URL") from None
        except (httpx.TransportError, _DownloadFailed) as error:
            if attempt == DOWNLOAD_ATTEMPTS:
                raise ExportFailed(f"bulk result download failed: {_describe(error)}") from None
            log.warning(
                "bulk result download broke off, starting again",
                extra={"fields": {"lines_read": delivered, "reason": _describe(error)}},
            )
            pause = min(2.0**attempt, 30.0)
            if loop.time() + pause >= deadline:
                raise _past_deadline(limits) from None
            await asyncio.sleep(pause)


async def _chunks_until(
    response: httpx.Response, deadline: float, limits: DownloadLimits
) -> AsyncIterator[bytes]:
    """The body's chunks; each read may wait only until the deadline."""
    chunks = response.aiter_bytes()
    loop = asyncio.get_running_loop()
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise _past_deadline(limits)
        try:
            async with asyncio.timeout(remaining):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise _past_deadline(limits) from None
        yield chunk


async def _lines(
    chunks: AsyncIterator[bytes], max_line_bytes: int
) -> AsyncIterator[bytes | OversizedLine]:
    """Lines of at most `max_line_bytes`; a longer one is skipped up to its newline.

    Each chunk is searched only for its own newlines, so a long line costs
    linear time, and at most `max_line_bytes` plus one chunk are held.
    """
    parts: list[bytes] = []
    held = 0
    skipping = 0  # bytes of an oversized line seen so far (0: not skipping)
    async for chunk in chunks:
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            piece = chunk[start:end]
            if skipping:
                yield OversizedLine(skipping + len(piece))
                skipping = 0
            elif held + len(piece) > max_line_bytes:
                yield OversizedLine(held + len(piece))
            else:
                line = b"".join((*parts, piece))
                if line.strip():
                    yield line
            parts, held, start = [], 0, end + 1
        rest = chunk[start:]
        if skipping:
            skipping += len(rest)
        elif held + len(rest) > max_line_bytes:
            skipping, parts, held = held + len(rest), [], 0
        elif rest:
            parts.append(rest)
            held += len(rest)
    if skipping:
        yield OversizedLine(skipping)
    elif held and (line := b"".join(parts)).strip():
        yield line


def _past_deadline(limits: DownloadLimits) -> ExportFailed:
    return ExportFailed(
        f"bulk result download did not finish within {limits.deadline_seconds:g} s"
        " (SYNC_BULK_DOWNLOAD_SECONDS)"
    )


class _DownloadFailed(Exception):
    pass


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__
