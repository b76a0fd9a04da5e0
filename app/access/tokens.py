"""Each shop's Admin API token, kept usable: the one place that refreshes and migrates tokens.

Shopify keeps one expiring offline token live per app and shop; any refresh,
code grant or token exchange revokes the earlier one. So exactly one component
may refresh: this one. Everything here that mints a token first claims the
shop's row (`credentials.claim`, a row with a deadline, not a session lock, so
it holds behind PgBouncer and across replicas); whoever finds the row claimed
waits for the claimant's result and uses it. A new pair is stored before
anything uses it. A lost answer, or a pair that could not be stored, is
recovered by asking again with the same refresh token (or original token),
which Shopify keeps valid until its replacement is first used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx

from app.access import metrics
from app.access.cipher import TokenCipher
from app.access.credentials import (
    Credentials,
    CredentialsUnusable,
    claim,
    connect,
    keep_original,
    mark_needs_reauthorization,
    release,
    shops_with_aging_refresh_tokens,
    store_claimed,
    usable_credentials,
)
from app.config import Settings
from app.db.database import Database, DatabaseUnavailable
from app.http.errors import ServiceUnavailable
from app.shopify.oauth import IssuedToken, TokenEndpoint, TokenEndpointFailed, TokenRefused

log = logging.getLogger("app.access")

# How long a claim holds: longer than the token endpoint's bounded retries take.
CLAIM_SECONDS = 60.0
WAIT_POLL_SECONDS = 0.1
# Refresh tokens expire after 90 days: one this close to it is refreshed even if
# nothing needs the shop's token, so that a quiet shop never loses access.
KEEP_ALIVE_WITHIN = timedelta(days=7)
# Shopify's own refusals that mean "this token, or its refresh, is dead": the
# shop needs re-authorization. Others (invalid_client: the app's own credentials
# are wrong) are the operator's to fix, not the shop's.
SHOP_REFUSALS = ("invalid_grant", "invalid_request", "invalid_subject_token")


class TokenRefreshFailed(ServiceUnavailable):
    """No new token now (Shopify's token endpoint unreachable, the store failed): try later."""


class AccessNotConfigured(ServiceUnavailable):
    """A setting needed to talk to Shopify's token endpoint is missing."""

    retry_later = False


class TokenService:
    """Fresh tokens for every shop of this process; one per process, shared."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        http: httpx.AsyncClient,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.database = database
        self.settings = settings
        self.http = http
        self.cipher = TokenCipher(settings.token_encryption_keys)
        self.margin = timedelta(seconds=settings.token_refresh_margin)
        self._sleep = sleep

    def endpoint(self) -> TokenEndpoint:
        """Shopify's token endpoint for this app; AccessNotConfigured without its credentials."""
        settings = self.settings
        for name, value in (
            ("SHOPIFY_API_KEY", settings.shopify_api_key),
            ("SHOPIFY_API_SECRET", settings.shopify_api_secret),
        ):
            if not value:
                raise AccessNotConfigured(
                    f"{name} is not set: the app's client id and secret are needed to connect"
                    " shops and to refresh and migrate their tokens"
                )
        assert settings.shopify_api_key and settings.shopify_api_secret
        return TokenEndpoint(
            self.http,
            base_url=settings.shopify_admin_base_url,
            api_key=settings.shopify_api_key,
            api_secret=settings.shopify_api_secret,
            sleep=self._sleep,
        )

    def for_shop(self, shop: str, credentials: Credentials | None = None) -> ShopTokens:
        """The token source an Admin API client of this shop uses."""
        return ShopTokens(self, shop, credentials)

    # -- handing out a token ------------------------------------------------------------------

    async def current(self, shop: str) -> Credentials:
        """The shop's credentials with at least the refresh margin left, refreshing first if not.

        CredentialsUnusable: none, unreadable, or the shop needs re-authorization.
        TokenRefreshFailed: a refresh was needed and could not be had now.
        """
        credentials = await self._usable(shop)
        if self.needs_refresh(credentials):
            credentials = await self.refresh(credentials)
        return credentials

    async def connected(self, shop: str, scopes: Sequence[str]) -> Credentials | None:
        """The shop's expiring credentials, if usable and granting `scopes`; None otherwise.

        A token exchange or install for such a shop would only revoke a working token.
        """
        try:
            credentials = await self.current(shop)
        except CredentialsUnusable:
            return None
        if not credentials.expiring or not grants(credentials.scopes, scopes):
            return None
        return credentials

    def needs_refresh(self, credentials: Credentials, margin: timedelta | None = None) -> bool:
        if not credentials.expiring:
            return False
        expires_at = credentials.expires_at
        return expires_at is None or expires_at - (margin or self.margin) <= datetime.now(UTC)

    async def after_rejection(self, shop: str, rejected: str) -> Credentials | None:
        """Shopify answered 401 to `rejected`: a newer token to try once, or None (final)."""
        try:
            credentials = await self._usable(shop)
        except CredentialsUnusable:
            return None
        if credentials.access_token != rejected:
            return credentials  # refreshed meanwhile by another caller
        if credentials.original_token is not None and not credentials.expiring:
            return await self.migrate(credentials)  # a migration whose answer was lost
        if not credentials.expiring:
            await mark_needs_reauthorization(
                self.database,
                shop,
                "Shopify refused the non-expiring access token (401)",
                credentials.generation,
            )
            return None
        try:
            return await self.refresh(credentials)
        except CredentialsUnusable:
            return None

    # -- minting tokens -----------------------------------------------------------------------

    async def refresh(self, seen: Credentials) -> Credentials:
        """A new pair for the shop: refreshed here, or by whoever holds the claim."""

        async def mint(endpoint: TokenEndpoint) -> IssuedToken:
            assert seen.refresh_token is not None
            return await endpoint.refresh(seen.shop, seen.refresh_token)

        return await self._single_flight(seen, "refresh", mint)

    async def migrate(self, seen: Credentials) -> Credentials:
        """An expiring pair for a non-expiring token (token exchange), keeping the original."""
        original = seen.original_token or seen.access_token
        if seen.original_token is None:
            await keep_original(self.database, self.cipher, seen)

        async def mint(endpoint: TokenEndpoint) -> IssuedToken:
            return await endpoint.migrate(seen.shop, original)

        return await self._single_flight(seen, "migration", mint)

    async def connect(self, shop: str, issued: IssuedToken) -> bool:
        """Store tokens from an install or token exchange; whether the shop had usable ones."""
        usable_before = await connect(self.database, self.cipher, shop, issued)
        log.info(
            "shop connected",
            extra={
                "fields": {
                    "shop": shop,
                    "expiring": issued.expiring,
                    "expires_at": _iso(issued.expires_at),
                    "first_connection": not usable_before,
                }
            },
        )
        return usable_before

    async def keep_refresh_tokens_alive(self) -> int:
        """Refresh every shop whose refresh token would expire soon; the number refreshed."""
        shops = await shops_with_aging_refresh_tokens(
            self.database, KEEP_ALIVE_WITHIN.total_seconds()
        )
        refreshed = 0
        for shop in shops:
            try:
                await self.refresh(await self._usable(shop))
                refreshed += 1
            except (CredentialsUnusable, TokenRefreshFailed, DatabaseUnavailable) as error:
                log.warning(
                    "refresh token not renewed",
                    extra={"fields": {"shop": shop, "reason": str(error)}},
                )
        return refreshed

    async def _single_flight(
        self,
        seen: Credentials,
        grant: str,
        mint: Callable[[TokenEndpoint], Awaitable[IssuedToken]],
    ) -> Credentials:
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + CLAIM_SECONDS + 5
        while True:
            claim_id = await claim(self.database, seen.shop, seen.generation, CLAIM_SECONDS)
            if claim_id is not None:
                break
            current = await self._usable(seen.shop)
            if current.generation != seen.generation:
                return current  # someone else's refresh: use its result
            if loop.time() > give_up_at:
                raise TokenRefreshFailed("another refresh of the shop's token did not finish")
            await self._sleep(WAIT_POLL_SECONDS)
        try:
            issued = await mint(self.endpoint())
        except TokenRefused as refused:
            if refused.error not in SHOP_REFUSALS:
                await self._give_back(seen, claim_id, grant, str(refused))
                raise TokenRefreshFailed(
                    f"{refused}: check SHOPIFY_API_KEY and SHOPIFY_API_SECRET"
                ) from None
            await mark_needs_reauthorization(
                self.database, seen.shop, str(refused), seen.generation
            )
            _log_refresh(seen.shop, grant, "refused", str(refused))
            raise CredentialsUnusable(f"{seen.shop} needs re-authorization: {refused}") from None
        except (TokenEndpointFailed, AccessNotConfigured) as failure:
            await self._give_back(seen, claim_id, grant, str(failure))
            raise TokenRefreshFailed(str(failure)) from None
        try:
            stored = await store_claimed(self.database, self.cipher, seen.shop, claim_id, issued)
        except DatabaseUnavailable as failure:
            # Unstored, the new pair is never used, so the old refresh token stays valid.
            _log_refresh(seen.shop, grant, "failed", f"the new pair could not be stored: {failure}")
            raise TokenRefreshFailed("the new token could not be stored") from None
        if not stored:
            # The claim ran out and another caller took over: its pair is the live one.
            _log_refresh(seen.shop, grant, "failed", "the claim ran out before the pair was stored")
            return await self._usable(seen.shop)
        _log_refresh(seen.shop, grant, "ok", None, issued)
        return await self._usable(seen.shop)

    async def _give_back(self, seen: Credentials, claim_id: UUID, grant: str, reason: str) -> None:
        _log_refresh(seen.shop, grant, "failed", reason)
        with contextlib.suppress(DatabaseUnavailable):  # else the claim runs out by itself
            await release(self.database, seen.shop, claim_id)

    async def _usable(self, shop: str) -> Credentials:
        return await usable_credentials(self.database, self.cipher, shop)


class ShopTokens:
    """One shop's token for an Admin API client: kept while it has time left, then renewed."""

    def __init__(
        self, service: TokenService, shop: str, credentials: Credentials | None = None
    ) -> None:
        self.service = service
        self.shop = shop
        self._credentials = credentials

    async def token(self) -> str:
        credentials = self._credentials
        if credentials is None or self.service.needs_refresh(credentials):
            credentials = self._credentials = await self.service.current(self.shop)
        return credentials.access_token

    async def rejected(self, token: str) -> str | None:
        credentials = await self.service.after_rejection(self.shop, token)
        self._credentials = credentials
        return None if credentials is None else credentials.access_token


def grants(granted: frozenset[str], wanted: Sequence[str]) -> bool:
    """Whether the granted scopes cover the wanted ones (write_X implies read_X, as at Shopify)."""
    return all(
        scope in granted
        or (scope.startswith("read_") and f"write_{scope.removeprefix('read_')}" in granted)
        for scope in wanted
    )


def _log_refresh(
    shop: str, grant: str, outcome: str, reason: str | None, issued: IssuedToken | None = None
) -> None:
    if grant == "refresh":
        metrics.TOKEN_REFRESHES.labels(outcome=outcome).inc()
    fields = {"shop": shop, "grant": grant, "outcome": outcome, "reason": reason}
    if issued is not None:
        fields["expires_at"] = _iso(issued.expires_at)
        fields["refresh_token_expires_at"] = _iso(issued.refresh_token_expires_at)
    log.log(
        logging.INFO if outcome == "ok" else logging.WARNING,
        "token %s %s",
        grant,
        outcome,
        extra={"fields": fields},
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
