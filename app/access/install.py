"""The OAuth install of a standalone app: the authorize redirect and the callback's checks.

The `state` nonce travels to Shopify in the authorize URL and back in the
callback's query; the browser keeps it in a signed, HttpOnly, SameSite=Lax
cookie valid for a few minutes, so a callback is only accepted in the browser
that started the install. Shopify signs the callback's query (hex HMAC-SHA256
over the sorted parameters without `hmac`, with the app's secret): checked in
constant time against the current and the previous secret, with the timestamp
no further than a short window from now.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from app.http.errors import BadRequest, Unauthorized
from app.shopify.domains import shop_domain

STATE_COOKIE = "shopify_ingest_oauth_state"
STATE_LIFETIME_SECONDS = 600
# Shopify's own library refuses a callback timestamp further than this from now.
TIMESTAMP_WINDOW_SECONDS = 90
# The cookie is signed with a key derived from the app's secret, never the secret itself.
_STATE_KEY_LABEL = b"shopify-ingest oauth state cookie"


class MalformedInstall(BadRequest):
    """The install or callback request is not what Shopify sends (400)."""


class ForgedInstall(Unauthorized):
    """A signature, the state or the timestamp does not check out (401)."""


@dataclass(frozen=True)
class InstallStart:
    authorize_url: str
    state_cookie: str


@dataclass(frozen=True)
class Callback:
    shop: str
    code: str


def begin_install(
    query: Mapping[str, str],
    *,
    api_key: str,
    secrets_: Sequence[bytes],
    admin_base_url: str,
    redirect_uri: str,
    scopes: Sequence[str],
    now: float | None = None,
) -> InstallStart:
    """The authorize URL to send the merchant to, and the state cookie to set."""
    shop = _shop(query)
    if "hmac" in query:  # opened from Shopify's admin: the launch parameters must verify
        verify_query(query, secrets_, now)
    nonce = secrets.token_urlsafe(32)
    params = {
        "client_id": api_key,
        "scope": ",".join(scopes),
        "redirect_uri": redirect_uri,
        "state": nonce,
    }
    url = f"{admin_base_url.format(shop=shop)}/admin/oauth/authorize?{urlencode(params)}"
    return InstallStart(url, _sign_state(nonce, shop, secrets_[0], now))


def check_callback(
    query: Mapping[str, str],
    cookie: str | None,
    secrets_: Sequence[bytes],
    now: float | None = None,
) -> Callback:
    """The shop and code of a callback that passed every check (else Malformed/ForgedInstall)."""
    if not query.get("hmac"):
        raise MalformedInstall("the callback has no hmac parameter")
    shop = _shop(query)
    code = query.get("code") or ""
    if not code or len(code) > 255 or not code.isascii() or not code.isprintable():
        raise MalformedInstall("the callback's code parameter is missing or malformed")
    verify_query(query, secrets_, now)
    nonce, cookie_shop = _verify_state(cookie, secrets_, now)
    state = query.get("state") or ""
    if not hmac.compare_digest(state.encode(), nonce.encode()):
        raise ForgedInstall("the callback's state does not match this browser's install")
    if cookie_shop != shop:
        raise ForgedInstall("the callback is for another shop than the install started")
    return Callback(shop=shop, code=code)


def verify_query(query: Mapping[str, str], secrets_: Sequence[bytes], now: float | None) -> None:
    """Shopify's signature over the query, and its timestamp's freshness."""
    given = query.get("hmac") or ""
    message = "&".join(
        f"{key}={value}" for key, value in sorted(query.items()) if key not in ("hmac", "signature")
    ).encode()
    expected = [hmac.new(secret, message, hashlib.sha256).hexdigest() for secret in secrets_]
    # Every candidate is compared, so the time taken says nothing about which matched.
    if not any([hmac.compare_digest(given.encode(), e.encode()) for e in expected]):
        raise ForgedInstall("the query's hmac does not verify")
    try:
        timestamp = int(query.get("timestamp") or "")
    except ValueError:
        raise MalformedInstall("the query's timestamp is missing or not a number") from None
    if abs((time.time() if now is None else now) - timestamp) > TIMESTAMP_WINDOW_SECONDS:
        raise ForgedInstall("the query's timestamp is too old or in the future")


def _shop(query: Mapping[str, str]) -> str:
    shop = shop_domain(query.get("shop") or "")
    if shop is None:
        raise MalformedInstall("shop must be a *.myshopify.com domain")
    return shop


def _state_key(secret: bytes) -> bytes:
    return hmac.new(secret, _STATE_KEY_LABEL, hashlib.sha256).digest()


def _sign_state(nonce: str, shop: str, secret: bytes, now: float | None) -> str:
    expires = int(time.time() if now is None else now) + STATE_LIFETIME_SECONDS
    body = base64.urlsafe_b64encode(json.dumps([nonce, shop, expires]).encode()).decode()
    signature = hmac.new(_state_key(secret), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{signature}"


def _verify_state(
    cookie: str | None, secrets_: Sequence[bytes], now: float | None
) -> tuple[str, str]:
    if not cookie or "." not in cookie or len(cookie) > 1000:
        raise ForgedInstall("no install in progress in this browser (state cookie missing)")
    body, _, signature = cookie.rpartition(".")
    expected = [
        hmac.new(_state_key(secret), body.encode(), hashlib.sha256).hexdigest()
        for secret in secrets_
    ]
    if not any([hmac.compare_digest(signature.encode(), e.encode()) for e in expected]):
        raise ForgedInstall("the state cookie's signature does not verify")
    try:
        nonce, shop, expires = json.loads(base64.urlsafe_b64decode(body.encode()))
    except (ValueError, binascii.Error, TypeError):
        raise ForgedInstall("the state cookie is malformed") from None
    if not isinstance(expires, int) or expires < (time.time() if now is None else now):
        raise ForgedInstall("the install took too long: start it again")
    return str(nonce), str(shop)
