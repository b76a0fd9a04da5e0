"""Shopify's OAuth side: the authorize redirect and the token endpoint, per shop.

As `docs/shopify-auth.md` (the team's notes, from shopify.dev) describes it:

- `/admin/oauth/authorize` approves at once and redirects to `redirect_uri`
  with `code`, `hmac`, `host`, `shop`, `state` and `timestamp`, signed with
  the app's secret as Shopify signs them.
- `/admin/oauth/access_token` takes the authorization-code grant, the refresh
  grant and the token-exchange grant (an App Bridge ID token, or a
  non-expiring offline token to migrate), as JSON or as a form.
- Expiring offline tokens: one live pair per shop; a new one (code grant,
  exchange, refresh) revokes the earlier ones. A used refresh token stays
  usable until its replacement is first used. A migration retried with the
  same original token returns the same pair for 7 days, until that pair is
  refreshed or replaced. A migrated non-expiring token stops working.
- Errors in Shopify's shapes: `invalid_grant`, `invalid_request`,
  `invalid_subject_token`, `invalid_client`.

Every lifetime is configurable, so tests can make tokens expire in seconds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt

from .data import DEFAULT_SCOPES

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
OFFLINE_TOKEN = "urn:shopify:params:oauth:token-type:offline-access-token"
ONLINE_TOKEN = "urn:shopify:params:oauth:token-type:online-access-token"

ACCESS_TTL = 3600.0
REFRESH_TTL = 90 * 86400.0
CODE_TTL = 600.0
MIGRATION_RECOVERY = 7 * 86400.0
RECOVERY_AFTER_FIRST_USE = 30 * 86400.0
ID_TOKEN_LEEWAY = 10


class OAuthRefusal(Exception):
    """An answer in Shopify's error shape: HTTP status and `{"error", "error_description"}`."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.status = status
        self.body = {"error": error, "error_description": description}


@dataclass
class StandInApp:
    """The app as registered with Shopify: its credentials and allowed redirect URLs."""

    api_key: str = "standin-api-key"
    api_secret: str = "test-secret"
    # Empty: any redirect_uri is allowed.
    redirect_urls: tuple[str, ...] = ()
    access_ttl: float = ACCESS_TTL
    refresh_ttl: float = REFRESH_TTL


@dataclass
class Pair:
    """An expiring offline access token and the refresh token that came with it."""

    access_token: str
    refresh_token: str
    expires_at: float
    refresh_expires_at: float
    scope: str
    grant: str


@dataclass
class _Retained:
    """A used refresh token, still usable until its replacement is first used."""

    refresh_token: str
    replaced_by: Pair
    until: float


@dataclass
class _Migration:
    pair: Pair
    until: float


@dataclass
class ShopAccess:
    """What Shopify holds about one shop's tokens for the app."""

    non_expiring: str | None
    scopes: tuple[str, ...]
    live: Pair | None = None
    retained: _Retained | None = None
    migrations: dict[str, _Migration] = field(default_factory=dict)
    codes: dict[str, tuple[str, float]] = field(default_factory=dict)
    # Tests: the live access token expires after this many more accepted calls.
    expire_after_calls: int | None = None
    # Tokens issued and then revoked, so tests can tell "revoked" from "never issued".
    revoked: set[str] = field(default_factory=set)

    def accepts(self, token: str, now: float) -> bool:
        """Whether an Admin API call with this access token is authorised."""
        if self.non_expiring is not None and hmac.compare_digest(
            token.encode(), self.non_expiring.encode()
        ):
            return True
        live = self.live
        if live is None or not hmac.compare_digest(token.encode(), live.access_token.encode()):
            return False
        if self.expire_after_calls is not None:
            if self.expire_after_calls <= 0:
                live.expires_at = now - 1
                self.expire_after_calls = None
            else:
                self.expire_after_calls -= 1
        return now < live.expires_at


class OAuthServer:
    """The OAuth side of the stand-in, shared by the HTTP handler threads."""

    def __init__(self, app: StandInApp | None = None, clock: Callable[[], float] = time.time):
        self.app = app or StandInApp()
        self.clock = clock
        self.lock = threading.Lock()
        self.shops: dict[str, ShopAccess] = {}
        # How a replayed (retained) refresh token answers: the pair it produced before,
        # or a new one (Shopify's behaviour here is not documented).
        self.replay_returns_same_pair = True

    # -- shops --------------------------------------------------------------------------------

    def register(
        self, domain: str, non_expiring: str | None, scopes: tuple[str, ...] = DEFAULT_SCOPES
    ) -> ShopAccess:
        with self.lock:
            access = self.shops[domain] = ShopAccess(non_expiring=non_expiring, scopes=scopes)
            return access

    def access(self, domain: str) -> ShopAccess:
        with self.lock:
            return self.shops[domain]

    def accepts(self, domain: str, token: str) -> bool:
        with self.lock:
            access = self.shops.get(domain)
            return access is not None and access.accepts(token, self.clock())

    def expire_now(self, domain: str) -> None:
        """Make the shop's live access token expire at once (its refresh token stays)."""
        with self.lock:
            live = self.shops[domain].live
            if live is not None:
                live.expires_at = self.clock() - 1

    def expire_after(self, domain: str, calls: int) -> None:
        """The live access token expires once `calls` more Admin API calls have used it."""
        with self.lock:
            self.shops[domain].expire_after_calls = calls

    def issue(
        self, domain: str, access_ttl: float | None = None, refresh_ttl: float | None = None
    ) -> dict[str, Any]:
        """An expiring pair, as if the app had got it earlier (tests hand it to the service)."""
        with self.lock:
            access = self.shops[domain]
            pair = self._new_pair(access, ",".join(access.scopes), "code")
            now = self.clock()
            if access_ttl is not None:
                pair.expires_at = now + access_ttl
            if refresh_ttl is not None:
                pair.refresh_expires_at = now + refresh_ttl
            self._replace(access, pair)
            return _answer(pair, now)

    def revoke_all(self, domain: str) -> None:
        """As an uninstall does: every token of the shop stops working at once."""
        with self.lock:
            access = self.shops[domain]
            for token in (access.non_expiring, *_pair_tokens(access.live)):
                if token:
                    access.revoked.add(token)
            access.non_expiring = None
            access.live = None
            access.retained = None
            access.migrations.clear()

    # -- authorize ----------------------------------------------------------------------------

    def authorize(self, domain: str, query: Mapping[str, str]) -> str:
        """The URL the merchant's browser is sent to after approving at once."""
        if query.get("client_id") != self.app.api_key:
            raise OAuthRefusal(400, "invalid_request", "Invalid client_id")
        redirect_uri = query.get("redirect_uri") or ""
        if self.app.redirect_urls and redirect_uri not in self.app.redirect_urls:
            raise OAuthRefusal(400, "invalid_request", "The redirect_uri is not whitelisted")
        requested = tuple(s.strip() for s in (query.get("scope") or "").split(",") if s.strip())
        with self.lock:
            access = self.shops.get(domain)
            if access is None:
                raise OAuthRefusal(404, "invalid_request", "Shop not found")
            granted = tuple(s for s in requested if s in access.scopes) or access.scopes
            code = secrets.token_hex(16)
            access.codes[code] = (",".join(granted), self.clock() + CODE_TTL)
        name = domain.split(".", 1)[0]
        host = base64.b64encode(f"admin.shopify.com/store/{name}".encode()).decode().rstrip("=")
        params = {
            "code": code,
            "host": host,
            "shop": domain,
            "state": query.get("state") or "",
            "timestamp": str(int(self.clock())),
        }
        params["hmac"] = query_hmac(params, self.app.api_secret)
        separator = "&" if "?" in redirect_uri else "?"
        return f"{redirect_uri}{separator}{urlencode(params)}"

    # -- the token endpoint -------------------------------------------------------------------

    def token(self, domain: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """One call of /admin/oauth/access_token; raises OAuthRefusal for Shopify's errors."""
        self._check_client(body)
        with self.lock:
            access = self.shops.get(domain)
            if access is None:
                raise OAuthRefusal(404, "invalid_request", "Shop not found")
            grant = str(body.get("grant_type") or "")
            expiring = str(body.get("expiring", "0")) == "1"
            if not grant and "code" in body:
                return self._code_grant(access, str(body["code"]), expiring)
            if grant == "refresh_token":
                return self._refresh(access, str(body.get("refresh_token") or ""))
            if grant == TOKEN_EXCHANGE:
                return self._exchange(domain, access, body, expiring)
            raise OAuthRefusal(400, "unsupported_grant_type", f"Unsupported grant {grant!r}")

    def _check_client(self, body: Mapping[str, Any]) -> None:
        client_id = str(body.get("client_id") or "")
        client_secret = str(body.get("client_secret") or "")
        if not (
            hmac.compare_digest(client_id.encode(), self.app.api_key.encode())
            and hmac.compare_digest(client_secret.encode(), self.app.api_secret.encode())
        ):
            raise OAuthRefusal(401, "invalid_client", "Client authentication failed")

    def _code_grant(self, access: ShopAccess, code: str, expiring: bool) -> dict[str, Any]:
        found = access.codes.pop(code, None)
        if found is None or found[1] < self.clock():
            raise OAuthRefusal(
                400, "invalid_request", "The authorization code was not found or was already used"
            )
        return self._issue(access, found[0], "code", expiring)

    def _refresh(self, access: ShopAccess, refresh_token: str) -> dict[str, Any]:
        now = self.clock()
        live = access.live
        if live is not None and hmac.compare_digest(
            refresh_token.encode(), live.refresh_token.encode()
        ):
            if live.refresh_expires_at <= now:
                raise OAuthRefusal(400, "invalid_grant", "The refresh token has expired")
            # Using the replacement retires its predecessor.
            successor = self._new_pair(access, live.scope, "refresh")
            access.retained = _Retained(
                refresh_token,
                successor,
                min(now + RECOVERY_AFTER_FIRST_USE, live.refresh_expires_at),
            )
            self._replace(access, successor)
            return _answer(successor, now)
        retained = access.retained
        if (
            retained is not None
            and hmac.compare_digest(refresh_token.encode(), retained.refresh_token.encode())
            and now < retained.until
            and access.live is retained.replaced_by
        ):
            if self.replay_returns_same_pair:
                return _answer(retained.replaced_by, now)
            successor = self._new_pair(access, retained.replaced_by.scope, "refresh")
            retained.replaced_by = successor
            self._replace(access, successor)
            return _answer(successor, now)
        raise OAuthRefusal(400, "invalid_grant", "The refresh token is invalid or was revoked")

    def _exchange(
        self, domain: str, access: ShopAccess, body: Mapping[str, Any], expiring: bool
    ) -> dict[str, Any]:
        subject = str(body.get("subject_token") or "")
        subject_type = str(body.get("subject_token_type") or "")
        requested = str(body.get("requested_token_type") or "")
        if requested != OFFLINE_TOKEN:
            raise OAuthRefusal(400, "invalid_request", "Only offline access tokens are served here")
        if subject_type == ID_TOKEN:
            self._verify_id_token(domain, subject)
            return self._issue(access, ",".join(access.scopes), "id_token", expiring)
        if subject_type == OFFLINE_TOKEN:
            return self._migrate(access, subject, expiring)
        raise OAuthRefusal(
            400, "invalid_request", f"Unsupported subject_token_type {subject_type!r}"
        )

    def _migrate(self, access: ShopAccess, original: str, expiring: bool) -> dict[str, Any]:
        now = self.clock()
        if not expiring:
            raise OAuthRefusal(400, "invalid_request", "Migration needs expiring=1")
        recovery = access.migrations.get(original)
        if recovery is not None:
            if now < recovery.until and access.live is recovery.pair:
                recovery.pair.expires_at = now + self.app.access_ttl
                return _answer(recovery.pair, now)
            raise OAuthRefusal(400, "invalid_subject_token", "Invalid subject token")
        if access.non_expiring is None or not hmac.compare_digest(
            original.encode(), access.non_expiring.encode()
        ):
            raise OAuthRefusal(400, "invalid_subject_token", "Invalid subject token")
        pair = self._new_pair(access, ",".join(access.scopes), "migration")
        access.revoked.add(original)
        access.non_expiring = None
        self._replace(access, pair)
        access.migrations[original] = _Migration(pair, now + MIGRATION_RECOVERY)
        return _answer(pair, now)

    def _verify_id_token(self, domain: str, token: str) -> None:
        try:
            claims = jwt.decode(
                token,
                self.app.api_secret,
                algorithms=["HS256"],
                audience=self.app.api_key,
                leeway=ID_TOKEN_LEEWAY,
                options={"require": ["exp", "nbf", "dest", "aud"]},
            )
        except jwt.PyJWTError:
            raise OAuthRefusal(400, "invalid_subject_token", "Invalid subject token") from None
        if claims.get("dest") != f"https://{domain}":
            raise OAuthRefusal(
                400, "invalid_subject_token", "The subject token is for another shop"
            )

    def _issue(self, access: ShopAccess, scope: str, grant: str, expiring: bool) -> dict[str, Any]:
        if not expiring:
            token = access.non_expiring or f"shpat_{secrets.token_hex(16)}"
            access.non_expiring = token
            return {"access_token": token, "scope": scope}
        pair = self._new_pair(access, scope, grant)
        self._replace(access, pair)
        return _answer(pair, self.clock())

    def _new_pair(self, access: ShopAccess, scope: str, grant: str) -> Pair:
        now = self.clock()
        return Pair(
            access_token=f"shpat_{secrets.token_hex(16)}",
            refresh_token=f"shprt_{secrets.token_hex(16)}",
            expires_at=now + self.app.access_ttl,
            refresh_expires_at=now + self.app.refresh_ttl,
            scope=scope,
            grant=grant,
        )

    def _replace(self, access: ShopAccess, pair: Pair) -> None:
        """One live expiring token per shop: the new pair revokes the earlier ones."""
        if access.live is not None and access.live is not pair:
            access.revoked.update(_pair_tokens(access.live))
        if access.non_expiring is not None:
            access.revoked.add(access.non_expiring)
            access.non_expiring = None
        if access.retained is not None and access.retained.replaced_by is not pair:
            access.retained = None
        for original, migration in list(access.migrations.items()):
            if migration.pair is not pair:
                del access.migrations[original]
        access.live = pair


def _pair_tokens(pair: Pair | None) -> tuple[str, ...]:
    return () if pair is None else (pair.access_token, pair.refresh_token)


def _answer(pair: Pair, now: float) -> dict[str, Any]:
    return {
        "access_token": pair.access_token,
        "scope": pair.scope,
        "expires_in": max(0, round(pair.expires_at - now)),
        "refresh_token": pair.refresh_token,
        "refresh_token_expires_in": max(0, round(pair.refresh_expires_at - now)),
    }


def query_hmac(params: Mapping[str, str], secret: str) -> str:
    """Shopify's signature of a query: hex HMAC-SHA256 over the sorted `k=v` pairs without hmac."""
    message = "&".join(
        f"{key}={value}"
        for key, value in sorted(params.items())
        if key not in ("hmac", "signature")
    )
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def session_token(
    app: StandInApp,
    domain: str,
    *,
    lifetime: float = 60,
    issued_at: float | None = None,
    secret: str | None = None,
    audience: str | None = None,
    dest: str | None = None,
) -> str:
    """An App Bridge session (ID) token as Shopify issues it to an embedded app's page."""
    now = int(time.time() if issued_at is None else issued_at)
    dest = dest or f"https://{domain}"
    claims = {
        "iss": f"{dest}/admin",
        "dest": dest,
        "aud": audience or app.api_key,
        "sub": "42",
        "exp": now + int(lifetime),
        "nbf": now,
        "iat": now,
        "jti": secrets.token_hex(8),
        "sid": secrets.token_hex(8),
    }
    return jwt.encode(claims, secret or app.api_secret, algorithm="HS256")
