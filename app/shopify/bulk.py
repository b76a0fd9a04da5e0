"""Bulk operations: a shop's whole history as one JSONL file, read as a stream.

Start with `bulkOperationRunQuery`, poll `bulkOperation(id:)` with backoff
until it finishes (or until the `bulk_operations/finish` webhook says it has),
then read the result line by line. The result URL points at storage outside
Shopify's Admin API (a signed URL): it is fetched without the access token.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import msgspec

from app.shopify.client import AdminClient
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
_IN_PROGRESS = re.compile(r"already in progress[^g]*(gid://shopify/BulkOperation/\d+)")

# Whether Shopify has announced (bulk_operations/finish) that the operation ended.
FinishedSignal = Callable[[str], Awaitable[bool]]


async def _never_signalled(operation_id: str) -> bool:
    return False


async def start_bulk_query(client: AdminClient, query: str) -> BulkOperation:
    """Start a bulk query; if the shop already runs one, wait for it to end and start ours.

    API versions before 2026-01 allow one bulk query per shop at a time; a
    second is refused with a user error naming the running one. That one may
    belong to another run of ours that crashed, or to another app process:
    waiting for it is always safe.
    """
    while True:
        answer = await client.query(RUN_BULK_QUERY, {"query": query}, cost=10)
        payload = answer.data.get("bulkOperationRunQuery") or {}
        errors = payload.get("userErrors") or []
        operation = payload.get("bulkOperation")
        if operation and not errors:
            return msgspec.convert(operation, BulkOperation)
        message = "; ".join(str(error.get("message")) for error in errors) or "no operation"
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
    operation = answer.data.get("bulkOperation")
    if operation is None:
        raise ExportFailed(f"bulk operation {operation_id} is unknown to Shopify")
    return msgspec.convert(operation, BulkOperation)


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


async def result_lines(http: httpx.AsyncClient, url: str) -> AsyncIterator[bytes]:
    """The JSONL result, one line at a time, never held whole in memory.

    A download that breaks off is started again and the lines already given
    are skipped, a bounded number of times. No access token is sent: the URL
    carries its own signature and belongs to another host.
    """
    delivered = 0
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        seen = 0
        try:
            async with http.stream("GET", url) as response:
                if response.status_code != 200:
                    raise _DownloadFailed(f"HTTP {response.status_code}")
                async for line in _lines(response):
                    seen += 1
                    if seen > delivered:
                        delivered = seen
                        yield line
            return
        except (httpx.TransportError, _DownloadFailed) as error:
            if attempt == DOWNLOAD_ATTEMPTS:
                raise ExportFailed(f"bulk result download failed: {_describe(error)}") from None
            log.warning(
                "bulk result download broke off, starting again",
                extra={"fields": {"lines_read": delivered, "reason": _describe(error)}},
            )
            await asyncio.sleep(min(2.0**attempt, 30.0))


async def _lines(response: httpx.Response) -> AsyncIterator[bytes]:
    pending = b""
    async for chunk in response.aiter_bytes():
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            if line.strip():
                yield line
    if pending.strip():
        yield pending


class _DownloadFailed(Exception):
    pass


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__
