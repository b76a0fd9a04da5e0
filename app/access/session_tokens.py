"""App Bridge session tokens: how an embedded app's page proves which shop it is open in.

An HS256 JWT signed with the app's secret (the current one, or the previous
one during a rotation), for the app (`aud` = the client id), valid for a
minute (`exp`, `nbf`, checked with Shopify's libraries' 10 s of leeway), for
the shop in `dest` (and issued by its admin, `iss`).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

import jwt

from app.http.errors import Unauthorized
from app.shopify.domains import shop_domain

LEEWAY_SECONDS = 10
MAX_TOKEN_LENGTH = 4096


class SessionTokenInvalid(Unauthorized):
    """The bearer token is not a valid session token of this app."""


def shop_of_session_token(token: str, *, api_key: str, secrets_: Sequence[bytes]) -> str:
    """The shop the session token was issued for; SessionTokenInvalid if it does not verify."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise SessionTokenInvalid("no session token, or one far too long")
    claims = None
    for secret in secrets_:
        try:
            claims = jwt.decode(
                token,
                secret,
                algorithms=["HS256"],
                audience=api_key,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "nbf", "aud", "dest", "iss"]},
            )
            break
        except jwt.InvalidSignatureError:
            continue  # perhaps signed with the other secret
        except jwt.PyJWTError as error:
            raise SessionTokenInvalid(f"the session token is not valid: {error}") from None
    if claims is None:
        raise SessionTokenInvalid("the session token's signature does not verify")
    return _shop(claims)


def _shop(claims: dict[str, object]) -> str:
    dest, issuer = claims.get("dest"), claims.get("iss")
    if not isinstance(dest, str) or not isinstance(issuer, str):
        raise SessionTokenInvalid("the session token names no shop")
    parts = urlsplit(dest)
    shop = shop_domain(parts.hostname or "")
    if parts.scheme != "https" or shop is None or dest.rstrip("/") != f"https://{shop}":
        raise SessionTokenInvalid("the session token's dest is not a shop")
    if issuer.rstrip("/") != f"https://{shop}/admin":
        raise SessionTokenInvalid("the session token was not issued by the shop's admin")
    return shop
