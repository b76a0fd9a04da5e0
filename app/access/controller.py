"""HTTP endpoints of shop access: connecting shops, handing tokens in, handing tokens out.

- `GET /auth/install` and `GET /auth/callback`: the OAuth install of a standalone app.
- `POST /auth/token-exchange`: an embedded app's page connects its shop with a session token.
- `PUT` / `DELETE /shops/{shop}/credentials`: an app that runs OAuth itself hands its tokens
  (and their ownership) to the service, or takes them away (admin token).
- `POST /shops/{shop}/access-token`: the one place other components take a valid token from,
  when TOKEN_BROKER_ENABLED (admin token).

Tokens go in through these and come out only through the last one.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, MediaType, Request, Response, delete, get, post, put
from litestar.datastructures import Cookie
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, FromPath
from litestar.response import Redirect
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from app.access import metrics
from app.access.credentials import delete_credentials
from app.access.install import STATE_COOKIE, STATE_LIFETIME_SECONDS, begin_install, check_callback
from app.access.session_tokens import shop_of_session_token
from app.access.tokens import AccessNotConfigured, TokenService
from app.config import Settings
from app.http.errors import BadGateway, BadRequest, Unauthorized
from app.http.guards import admin_only, shop_path
from app.http.state import database_of, settings_of
from app.shopify.oauth import IssuedToken, TokenEndpointFailed, TokenRefused

log = logging.getLogger("app.access")

# What happens when a shop is connected for the first time (or again, after it
# needed re-authorization): subscriptions and its first full sync, wired in app/asgi.py.
FirstConnection = Callable[[str], Awaitable[None]]

# A printable token without spaces; Shopify's are `shpat_` / `shprt_` + 32 hex digits.
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=1000, pattern=r"^[\x21-\x7e]+$")]
Scope = Annotated[str, msgspec.Meta(max_length=2000, pattern=r"^[\x20-\x7e]*$")]
Lifetime = Annotated[int, msgspec.Meta(ge=1, le=400 * 86400)]
CALLER = re.compile(r"[A-Za-z0-9._-]{1,64}")


class CredentialsIn(msgspec.Struct, forbid_unknown_fields=True):
    """A shop's offline access token and, for an expiring one, its refresh token and expiries.

    Give `expires_in` (seconds from now) or `expires_at`, as Shopify's token
    endpoint answered. From then on the service owns the token: it refreshes
    it, and nothing else may (Shopify keeps one expiring token live per shop).
    """

    access_token: Token
    scope: Scope | None = None
    refresh_token: Token | None = None
    expires_in: Lifetime | None = None
    expires_at: datetime | None = None
    refresh_token_expires_in: Lifetime | None = None


class ConnectedShop(msgspec.Struct):
    """A shop the service now holds tokens for (never the tokens themselves)."""

    shop: str
    scope: str
    expires_at: datetime | None


class AccessToken(msgspec.Struct):
    """A token with at least TOKEN_REFRESH_MARGIN left; `expires_at` null: it does not expire."""

    access_token: str
    expires_at: datetime | None
    scope: str | None


def _tokens(request: Request[Any, Any, Any]) -> TokenService:
    tokens: TokenService = request.app.state.tokens
    return tokens


def _api_key(settings: Settings) -> str:
    if not settings.shopify_api_key:
        raise AccessNotConfigured(
            "SHOPIFY_API_KEY is not set: set it to your app's client id to connect shops"
        )
    return settings.shopify_api_key


def _redirect_uri(settings: Settings) -> str:
    if not settings.public_url:
        raise AccessNotConfigured(
            "PUBLIC_URL is not set: Shopify redirects to PUBLIC_URL/auth/callback after an install"
        )
    return f"{settings.public_url}/auth/callback"


def _query(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The query as Shopify signs it: a repeated parameter's values joined with commas."""
    params = request.query_params
    return {key: ",".join(params.getall(key)) for key in params}


async def _connect(request: Request[Any, Any, Any], shop: str, issued: IssuedToken) -> None:
    usable_before = await _tokens(request).connect(shop, issued)
    if not usable_before:
        first_connection: FirstConnection = request.app.state.first_connection
        await first_connection(shop)


def _shopify_failed(error: TokenEndpointFailed | TokenRefused) -> Exception:
    if isinstance(error, TokenRefused):
        return BadRequest(f"Shopify refused the grant: {error.error}")
    return BadGateway("Shopify's token endpoint gave no usable answer; try again")


class AuthController(Controller):
    path = "/auth"
    tags = ("shop access",)

    @get(
        "/install",
        summary="Start the OAuth install of the app on a shop (standalone apps)",
        description=(
            "Redirects (302) to the shop's authorize page with a fresh state, kept in a"
            " signed cookie for 10 minutes. Shopify's launch parameters (hmac, timestamp,"
            " host), when present, must verify."
        ),
        status_code=302,
    )
    async def install(self, request: Request[Any, Any, Any]) -> Redirect:
        settings = settings_of(request)
        start = begin_install(
            _query(request),
            api_key=_api_key(settings),
            secrets_=settings.shopify_secrets,
            admin_base_url=settings.shopify_admin_base_url,
            redirect_uri=_redirect_uri(settings),
            scopes=settings.shopify_scopes,
        )
        cookie = Cookie(
            key=STATE_COOKIE,
            value=start.state_cookie,
            max_age=STATE_LIFETIME_SECONDS,
            path="/auth",
            httponly=True,
            samesite="lax",
            secure=(settings.public_url or "").startswith("https://"),
        )
        return Redirect(start.authorize_url, cookies=[cookie])

    @get(
        "/callback",
        summary="Shopify's redirect after the merchant approved the install",
        description=(
            "Checks the query's hmac, its timestamp, the shop and the state against this"
            " browser's cookie; then exchanges the code for expiring offline tokens, stores"
            " them and, for a newly connected shop, creates its webhook subscriptions and"
            " starts its first full sync. 302 to POST_INSTALL_REDIRECT, or a page naming"
            " the shop. A failed check: 400 or 401, nothing stored, Shopify not called."
        ),
        status_code=HTTP_200_OK,
        media_type=MediaType.HTML,
        responses={302: ResponseSpec(None, description="to POST_INSTALL_REDIRECT, when set")},
    )
    async def callback(self, request: Request[Any, Any, Any]) -> Response[str]:
        settings = settings_of(request)
        callback = check_callback(
            _query(request), request.cookies.get(STATE_COOKIE), settings.shopify_secrets
        )
        tokens = _tokens(request)
        try:
            issued = await tokens.endpoint().exchange_code(callback.shop, callback.code)
        except (TokenEndpointFailed, TokenRefused) as error:
            raise _shopify_failed(error) from None
        await _connect(request, callback.shop, issued)
        done = Cookie(key=STATE_COOKIE, value="", max_age=0, path="/auth", httponly=True)
        if settings.post_install_redirect:
            url = settings.post_install_redirect.replace("{shop}", callback.shop)
            return Redirect(url, cookies=[done])
        page = (
            "<!doctype html><meta charset=utf-8><title>Connected</title>"
            f"<p>{html.escape(callback.shop)} is connected. Its history is being synced.</p>"
        )
        return Response(page, media_type="text/html", cookies=[done])

    @post(
        "/token-exchange",
        summary="Connect the shop an embedded app's page is open in (App Bridge session token)",
        description=(
            "Authorization: Bearer <session token>. The token must be HS256 under the app's"
            " secret, for SHOPIFY_API_KEY, unexpired, for a shop. Then Shopify's token"
            " exchange gives expiring offline tokens, stored as after an install. A shop"
            " whose tokens are usable keeps them (a new exchange would revoke them). An"
            " invalid session token: 401, Shopify not called. Never answers a token."
        ),
        status_code=HTTP_200_OK,
    )
    async def token_exchange(self, request: Request[Any, Any, Any]) -> ConnectedShop:
        settings = settings_of(request)
        scheme, _, session_token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            raise Unauthorized("send Authorization: Bearer <App Bridge session token>")
        shop = shop_of_session_token(
            session_token.strip(), api_key=_api_key(settings), secrets_=settings.shopify_secrets
        )
        tokens = _tokens(request)
        current = await tokens.connected(shop, settings.shopify_scopes)
        if current is not None:
            return ConnectedShop(
                shop=shop, scope=current.scope or "", expires_at=current.expires_at
            )
        try:
            issued = await tokens.endpoint().exchange_session_token(shop, session_token.strip())
        except (TokenEndpointFailed, TokenRefused) as error:
            raise _shopify_failed(error) from None
        await _connect(request, shop, issued)
        return ConnectedShop(shop=shop, scope=issued.scope, expires_at=issued.expires_at)


class CredentialsController(Controller):
    guards = (admin_only,)
    tags = ("shop access",)
    security = ({"bearer": []},)

    @put(
        "/shops/{shop:str}/credentials",
        status_code=HTTP_204_NO_CONTENT,
        summary="Hand a shop's Admin API tokens to the service (encrypted at rest)",
        description=(
            "For apps that run OAuth themselves. With a refresh token, the service owns the"
            " token from now on: it refreshes it before it expires, and other components"
            " must take it from POST /shops/{shop}/access-token instead of refreshing."
            " Does not call Shopify: a bad token shows at the shop's first sync."
        ),
    )
    async def put_credentials(
        self,
        request: Request[Any, Any, Any],
        shop: FromPath[str],
        data: Annotated[CredentialsIn, Body()],
    ) -> None:
        await _tokens(request).connect(shop_path(shop), _handed_over(data))

    @delete(
        "/shops/{shop:str}/credentials",
        status_code=HTTP_204_NO_CONTENT,
        summary="Delete a shop's Admin API credentials",
    )
    async def delete_credentials(
        self, request: Request[Any, Any, Any], shop: FromPath[str]
    ) -> None:
        await delete_credentials(database_of(request), shop_path(shop))


class TokenBrokerController(Controller):
    """Mounted only when TOKEN_BROKER_ENABLED=true (app/asgi.py)."""

    guards = (admin_only,)
    tags = ("shop access",)
    security = ({"bearer": []},)

    @post(
        "/shops/{shop:str}/access-token",
        status_code=HTTP_200_OK,
        summary="A valid Admin API token for the shop, for another component of the app",
        description=(
            "The one place the app's other components take a shop's token from: it has at"
            " least TOKEN_REFRESH_MARGIN left, refreshed first if needed, so nothing else"
            " ever refreshes (which would revoke this service's token). Name the caller in"
            " X-Caller (letters, digits, . _ -) for the log and the metric. 409: the shop"
            " needs re-authorization or has no credentials."
        ),
    )
    async def access_token(
        self, request: Request[Any, Any, Any], shop: FromPath[str]
    ) -> AccessToken:
        domain = shop_path(shop)
        caller = request.headers.get("x-caller", "unnamed")
        if not CALLER.fullmatch(caller):
            raise BadRequest("X-Caller must be 1-64 letters, digits, '.', '_' or '-'")
        credentials = await _tokens(request).current(domain)
        metrics.count_issued(caller)
        log.info(
            "access token issued",
            extra={
                "fields": {
                    "shop": domain,
                    "caller": caller,
                    "expires_at": None
                    if credentials.expires_at is None
                    else credentials.expires_at.isoformat(),
                }
            },
        )
        return AccessToken(
            access_token=credentials.access_token,
            expires_at=credentials.expires_at,
            scope=credentials.scope,
        )


def _handed_over(data: CredentialsIn) -> IssuedToken:
    now = datetime.now(UTC)
    if data.expires_in is not None and data.expires_at is not None:
        raise BadRequest("give expires_in or expires_at, not both")
    expires_at = data.expires_at
    if expires_at is not None and expires_at.tzinfo is None:
        raise BadRequest("expires_at must carry a time zone")
    if data.expires_in is not None:
        expires_at = now + timedelta(seconds=data.expires_in)
    if data.refresh_token is None and (expires_at or data.refresh_token_expires_in):
        raise BadRequest("an expiring token comes with its refresh_token")
    if data.refresh_token is not None and expires_at is None:
        raise BadRequest("with a refresh_token, give expires_in or expires_at")
    refresh_expires_in = data.refresh_token_expires_in
    return IssuedToken(
        access_token=data.access_token,
        scope=data.scope or "",
        expires_at=expires_at,
        refresh_token=data.refresh_token,
        refresh_token_expires_at=None
        if refresh_expires_in is None
        else now + timedelta(seconds=refresh_expires_in),
    )
