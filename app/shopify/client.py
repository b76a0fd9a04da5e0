"""Shopify's GraphQL Admin API over httpx: one shop, its token, its rate limit.

Shopify meters every shop with a leaky bucket of cost points
(`extensions.cost.throttleStatus`). The client remembers what the last answer
said and does not send a query the bucket cannot pay for: it waits
`(needed - available) / restoreRate` first. Figures outside what Shopify can
send (negative, not finite, a bucket that never refills) make the answer
invalid, and no single wait is longer than MAX_WAIT_SECONDS: an answer cannot
make a run wait without end. Throttled answers, HTTP 429, 5xx,
timeouts and dropped connections are retried with exponential backoff and
jitter, a bounded number of times. A 401 is retried once, with the token the
token source hands out after hearing that the last one was refused (a newer
one, after a refresh); a second 401, or a 403, is final: only a new
authorization can fix it.

The access token goes in one header to the shop's Admin API host and nowhere
else; it never appears in an exception message or a log line.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx
import msgspec

from app.shopify.errors import (
    CredentialsRefused,
    InvalidAnswer,
    QueryRefused,
    ShopifyThrottled,
    ShopifyUnavailable,
)

log = logging.getLogger("app.shopify")

T = TypeVar("T")

# Shopify refuses a single query costing more than this, whatever the bucket holds.
MAX_QUERY_COST = 1000
MAX_ATTEMPTS = 6
MAX_THROTTLED_ANSWERS = 30
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
TIMEOUT = httpx.Timeout(30.0, connect=5.0, pool=10.0)
# The longest one wait for the bucket, a throttled answer or a backoff may be;
# the run's deadline (SYNC_RUN_DEADLINE_SECONDS) bounds their sum.
MAX_WAIT_SECONDS = 60.0
# Bounds of the figures an answer's cost extension may hold. Shopify's buckets
# hold thousands of points and refill at tens to thousands a second; beyond
# these the answer is not Shopify's to be trusted.
MAX_COST_FIGURE = 1_000_000.0
MIN_RESTORE_RATE = 1.0


class TokenSource(Protocol):
    """Where a client gets the shop's access token (app/access keeps it fresh)."""

    async def token(self) -> str:
        """A token with time left to use."""
        ...

    async def rejected(self, token: str) -> str | None:
        """Shopify answered 401 to `token`: a newer token to try once, or None."""
        ...


class FixedToken:
    """A token that never changes (tests, and tokens handed in for one call)."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self) -> str:
        return self._token

    async def rejected(self, token: str) -> str | None:
        return None


@dataclass
class Bucket:
    """The shop's leaky bucket as the last answer described it, refilled with time since."""

    maximum: float = float(MAX_QUERY_COST)
    available: float = float(MAX_QUERY_COST)
    restore_rate: float = 50.0
    observed_at: float = field(default_factory=time.monotonic)

    def now_available(self) -> float:
        elapsed = time.monotonic() - self.observed_at
        return min(self.maximum, self.available + elapsed * self.restore_rate)

    def seconds_until(self, cost: float) -> float:
        """How long until `cost` points are in the bucket (0: now)."""
        missing = min(cost, self.maximum) - self.now_available()
        return max(0.0, missing / self.restore_rate) if missing > 0 else 0.0

    def observe(self, status: ThrottleStatus) -> None:
        """Take the answer's figures; InvalidAnswer when no Shopify bucket could have them."""
        maximum, available, rate = (
            status.maximum_available,
            status.currently_available,
            status.restore_rate,
        )
        # Written so that NaN fails every comparison.
        plausible = (
            0 < maximum <= MAX_COST_FIGURE
            and 0 <= available <= maximum
            and MIN_RESTORE_RATE <= rate <= MAX_COST_FIGURE
        )
        if not plausible:
            raise InvalidAnswer(
                f"implausible throttleStatus (maximumAvailable {maximum},"
                f" currentlyAvailable {available}, restoreRate {rate})"
            )
        self.maximum, self.available, self.restore_rate = maximum, available, rate
        self.observed_at = time.monotonic()


class ThrottleStatus(msgspec.Struct, rename="camel"):
    maximum_available: float
    currently_available: float
    restore_rate: float


class QueryCost(msgspec.Struct, rename="camel"):
    requested_query_cost: float | None = None
    actual_query_cost: float | None = None
    throttle_status: ThrottleStatus | None = None


class Extensions(msgspec.Struct):
    cost: QueryCost | None = None


class Envelope(msgspec.Struct):
    """A GraphQL answer's top level; `data` is read by each caller into its own types."""

    data: Any = None
    errors: Any = None
    extensions: Extensions | None = None


@dataclass
class Usage:
    """What a sync's API calls cost: points spent, and time spent waiting for the bucket."""

    api_cost: int = 0
    throttle_wait_seconds: float = 0.0
    requests: int = 0


@dataclass(frozen=True)
class Answer:
    data: dict[str, Any]
    requested_cost: int | None


class AdminClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        shop: str,
        tokens: TokenSource,
        base_url: str,
        api_version: str,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.http = http
        self.shop = shop
        self.endpoint = f"{base_url.format(shop=shop)}/admin/api/{api_version}/graphql.json"
        self._tokens = tokens
        self.bucket = Bucket()
        self.usage = Usage()
        self._sleep = sleep

    async def query(
        self, document: str, variables: dict[str, Any] | None = None, *, cost: float = 10
    ) -> Answer:
        """Run one query or mutation; `cost` is what it is expected to cost (for the bucket)."""
        failures = 0
        throttled = 0
        refused_once = False
        body = {"query": document, "variables": variables or {}}
        token = await self._tokens.token()
        while True:
            await self._wait_for_bucket(cost)
            try:
                answer = await self._post(body, cost, token)
            except _Unauthorized:
                newer = None if refused_once else await self._tokens.rejected(token)
                if newer is None:
                    raise CredentialsRefused(
                        "Shopify answered 401: the access token was refused"
                    ) from None
                refused_once, token = True, newer
                continue
            except _Throttled as error:
                throttled += 1
                if throttled > MAX_THROTTLED_ANSWERS:
                    raise ShopifyThrottled(f"throttled {throttled} times in a row") from None
                await self._pause(error.wait_seconds, throttle=True)
                continue
            except _Retryable as error:
                failures += 1
                if failures >= MAX_ATTEMPTS:
                    raise ShopifyUnavailable(
                        f"gave up after {failures} attempts: {error}"
                    ) from None
                delay = error.retry_after or _backoff(failures)
                log.warning(
                    "admin api call failed, retrying",
                    extra={"fields": {"shop": self.shop, "reason": str(error), "in_s": delay}},
                )
                await self._pause(delay, throttle=error.retry_after is not None)
                continue
            return answer

    async def _wait_for_bucket(self, cost: float) -> None:
        wait = self.bucket.seconds_until(cost)
        if wait > 0:
            await self._pause(wait, throttle=True)

    async def _pause(self, seconds: float, *, throttle: bool) -> None:
        seconds = min(max(seconds, 0.0), MAX_WAIT_SECONDS)
        if throttle:
            self.usage.throttle_wait_seconds += seconds
        await self._sleep(seconds)

    async def _post(self, body: dict[str, Any], cost: float, token: str) -> Answer:
        self.usage.requests += 1
        headers = {"X-Shopify-Access-Token": token}
        try:
            response = await self.http.post(self.endpoint, json=body, headers=headers)
        except httpx.TimeoutException:
            raise _Retryable("timed out") from None
        except httpx.TransportError as error:
            raise _Retryable(f"connection failed ({type(error).__name__})") from None
        status = response.status_code
        if status == 401:
            raise _Unauthorized
        if status == 403:
            raise CredentialsRefused("Shopify answered 403: the access token lacks a scope")
        if status == 429:
            raise _Retryable("HTTP 429", retry_after=_retry_after(response))
        if status >= 500:
            raise _Retryable(f"HTTP {status}")
        if status != 200:
            raise ShopifyUnavailable(f"Shopify answered HTTP {status}")
        return self._answer(response.content, cost)

    def _answer(self, content: bytes, cost: float) -> Answer:
        payload = _envelope(content)
        query_cost = (payload.extensions and payload.extensions.cost) or QueryCost()
        requested, actual = query_cost.requested_query_cost, query_cost.actual_query_cost
        for name, figure in (("requestedQueryCost", requested), ("actualQueryCost", actual)):
            if figure is not None and not 0 <= figure <= MAX_COST_FIGURE:
                raise InvalidAnswer(f"implausible {name} {figure}")
        if query_cost.throttle_status is not None:
            self.bucket.observe(query_cost.throttle_status)
        self.usage.api_cost += round(actual or 0)
        errors = payload.errors
        if errors:
            if _is_throttled(errors):
                needed = requested if requested is not None else cost
                raise _Throttled(max(self.bucket.seconds_until(needed), 0.5))
            raise QueryRefused(f"the query was refused: {_first_message(errors)}")
        if not isinstance(payload.data, dict):
            raise _Retryable("the answer held no data")
        return Answer(payload.data, round(requested) if requested is not None else None)


class _Unauthorized(Exception):
    pass


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class _Throttled(Exception):
    def __init__(self, wait_seconds: float) -> None:
        super().__init__("throttled")
        self.wait_seconds = wait_seconds


def answer_part(value: Any, model: type[T], what: str) -> T:
    """A part of an answer's data as `model`; InvalidAnswer when it is not of that shape."""
    try:
        return msgspec.convert(value, model)
    except msgspec.ValidationError as error:
        raise InvalidAnswer(f"{what} is not as the API documents it: {error}") from None
    except RecursionError:
        raise InvalidAnswer(f"{what} is nested too deeply to be read") from None


def _envelope(content: bytes) -> Envelope:
    """The answer's top level. Not JSON (cut short, garbled): retried; JSON of another
    shape, or nested deeper than a decoder should follow: invalid."""
    try:
        return msgspec.json.decode(content, type=Envelope)
    except msgspec.ValidationError as error:  # before DecodeError, its base class
        raise InvalidAnswer(f"the answer is not a GraphQL answer: {error}") from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise _Retryable("the answer was not JSON") from None
    except RecursionError:
        raise InvalidAnswer("the answer is nested too deeply to be read") from None


def _backoff(failures: int) -> float:
    """Exponential backoff with full jitter, so many clients do not retry in step."""
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2**failures)
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 (not for security)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return min(max(float(response.headers["retry-after"]), 0.0), BACKOFF_MAX_SECONDS)
    except (KeyError, ValueError):
        return None


def _is_throttled(errors: Any) -> bool:
    if not isinstance(errors, list):
        return False
    return any(
        isinstance(error, dict) and (error.get("extensions") or {}).get("code") == "THROTTLED"
        for error in errors
    )


def _first_message(errors: Any) -> str:
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("message", "unknown error"))[:500]
    return str(errors)[:500]


def http_client() -> httpx.AsyncClient:
    """The httpx client for Admin API calls and bulk downloads (no redirects to other hosts)."""
    return httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False, verify=_tls_context())


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process, shared by its clients: loading the CA bundle is most of
    what creating a client costs."""
    return httpx.create_ssl_context()
