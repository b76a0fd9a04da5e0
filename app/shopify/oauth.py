"""Shopify's token endpoint (`/admin/oauth/access_token`) over httpx: the grants that mint tokens.

- the authorization-code grant (the install's callback),
- the refresh grant (a new pair for an expiring offline token),
- token exchange of an App Bridge session token (embedded apps),
- token exchange of a non-expiring offline token (migration to expiring ones).

Every grant asks for expiring offline tokens (`expiring=1`). Bodies are JSON, as
Shopify's own libraries send them. 5xx, 429, timeouts and dropped connections
are retried a bounded number of times with the same body: a refresh token stays
valid until its replacement is first used, and a migration retried with the
same original token returns the same pair, so a lost answer is recovered by
asking again. A refusal in Shopify's OAuth error shape (`invalid_grant`,
`invalid_request`, ...) is never retried.

No token or secret appears in an exception message, a repr or a log line.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import msgspec

from app.shopify.errors import CredentialsRefused, ShopifyUnavailable

log = logging.getLogger("app.shopify")

# Grant and token type names of the token exchange (RFC 8693 and Shopify's), not secrets.
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105
OFFLINE_TOKEN = "urn:shopify:params:oauth:token-type:offline-access-token"  # noqa: S105

# Shopify documents 60 minutes; an answer with a refresh token but no expires_in
# is taken to mean that, never "does not expire" (shopify-app-js issue 3400).
DOCUMENTED_ACCESS_LIFETIME = 3600
# The longest lifetime taken from an answer; anything longer is not a real answer.
MAX_LIFETIME = 400 * 86400
MAX_TOKEN_LENGTH = 1000
ATTEMPTS = 3
BACKOFF_SECONDS = 0.5
TIMEOUT = httpx.Timeout(10.0, connect=5.0, pool=5.0)


class TokenRefused(CredentialsRefused):
    """Shopify refused the grant (`invalid_grant`, `invalid_request`...): no use asking again."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"Shopify refused the token request ({status} {error}: {description})")
        self.status = status
        self.error = error


class TokenEndpointFailed(ShopifyUnavailable):
    """No usable answer from the token endpoint after the retries (outage, timeouts)."""


@dataclass(frozen=True)
class IssuedToken:
    """What the token endpoint handed out, with absolute expiry times."""

    access_token: str
    scope: str
    expires_at: datetime | None
    refresh_token: str | None
    refresh_token_expires_at: datetime | None

    @property
    def expiring(self) -> bool:
        return self.refresh_token is not None

    def __repr__(self) -> str:  # never a token in a log line or traceback
        return (
            f"IssuedToken(scope={self.scope!r}, expires_at={self.expires_at!r}, "
            f"refresh_token_expires_at={self.refresh_token_expires_at!r}, tokens=<hidden>)"
        )


class _Answer(msgspec.Struct):
    access_token: str
    scope: str = ""
    expires_in: float | None = None
    refresh_token: str | None = None
    refresh_token_expires_in: float | None = None


class _Refusal(msgspec.Struct):
    error: str
    error_description: str = ""


class TokenEndpoint:
    """The grants, for one app (client id and secret), against the shop's own host."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str,
        api_secret: str,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.http = http
        self.base_url = base_url
        self._client = {"client_id": api_key, "client_secret": api_secret}
        self._sleep = sleep

    async def exchange_code(self, shop: str, code: str) -> IssuedToken:
        return await self._grant(shop, "code", {"code": code, "expiring": "1"})

    async def refresh(self, shop: str, refresh_token: str) -> IssuedToken:
        body = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return await self._grant(shop, "refresh", body)

    async def exchange_session_token(self, shop: str, session_token: str) -> IssuedToken:
        return await self._grant(shop, "id_token", _exchange(session_token, ID_TOKEN))

    async def migrate(self, shop: str, non_expiring_token: str) -> IssuedToken:
        return await self._grant(shop, "migration", _exchange(non_expiring_token, OFFLINE_TOKEN))

    async def _grant(self, shop: str, grant: str, body: dict[str, str]) -> IssuedToken:
        url = f"{self.base_url.format(shop=shop)}/admin/oauth/access_token"
        payload = {**self._client, **body}
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await self._post(url, payload)
            except _Retryable as error:
                if attempt == ATTEMPTS:
                    raise TokenEndpointFailed(
                        f"Shopify's token endpoint gave no usable answer to the {grant} grant "
                        f"after {attempt} attempts ({error})"
                    ) from None
                delay = random.uniform(0.5, 1.0) * BACKOFF_SECONDS * 2**attempt  # noqa: S311
                log.warning(
                    "token endpoint failed, retrying",
                    extra={"fields": {"shop": shop, "grant": grant, "reason": str(error)}},
                )
                await self._sleep(delay)
        raise AssertionError("unreachable")

    async def _post(self, url: str, payload: dict[str, str]) -> IssuedToken:
        try:
            response = await self.http.post(
                url, json=payload, headers={"Accept": "application/json"}, timeout=TIMEOUT
            )
        except httpx.TimeoutException:
            raise _Retryable("timed out") from None
        except httpx.TransportError as error:
            raise _Retryable(f"connection failed ({type(error).__name__})") from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Retryable(f"HTTP {status}")
        if status != 200:
            raise _refusal(status, response.content)
        return _issued(response.content, datetime.now(UTC))


class _Retryable(Exception):
    pass


def _exchange(subject: str, subject_type: str) -> dict[str, str]:
    return {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": subject,
        "subject_token_type": subject_type,
        "requested_token_type": OFFLINE_TOKEN,
        "expiring": "1",
    }


def _refusal(status: int, content: bytes) -> TokenRefused:
    try:
        refusal = msgspec.json.decode(content, type=_Refusal)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return TokenRefused(status, "unknown_error", "the answer was not Shopify's error shape")
    return TokenRefused(status, refusal.error[:100], refusal.error_description[:300])


def _issued(content: bytes, now: datetime) -> IssuedToken:
    try:
        answer = msgspec.json.decode(content, type=_Answer)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise _Retryable("the answer was not a token") from None
    if not _plausible_token(answer.access_token) or (
        answer.refresh_token is not None and not _plausible_token(answer.refresh_token)
    ):
        raise _Retryable("the answer's token is malformed")
    expires_in = answer.expires_in
    if answer.refresh_token is not None and expires_in is None:
        expires_in = DOCUMENTED_ACCESS_LIFETIME
    return IssuedToken(
        access_token=answer.access_token,
        scope=answer.scope[:2000],
        expires_at=_after(now, expires_in),
        refresh_token=answer.refresh_token,
        refresh_token_expires_at=_after(now, answer.refresh_token_expires_in),
    )


def _plausible_token(token: str) -> bool:
    return 0 < len(token) <= MAX_TOKEN_LENGTH and token.isascii() and token.isprintable()


def _after(now: datetime, seconds: float | None) -> datetime | None:
    if seconds is None:
        return None
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_LIFETIME:
        raise _Retryable("the answer's lifetime is not plausible")
    return now + timedelta(seconds=seconds)
