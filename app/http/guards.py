"""Who may call the admin endpoints, and the `{shop}` path parameter they share."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import (
    NotAuthorizedException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.handlers import BaseRouteHandler

from app.http.state import settings_of
from app.shopify.domains import shop_domain


def admin_only(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """`Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time; 403 when it is unset."""
    token = settings_of(connection).admin_token
    if not token:
        raise PermissionDeniedException("the admin API is disabled: set ADMIN_TOKEN to enable it")
    scheme, _, supplied = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(supplied.encode(), token.encode()):
        raise NotAuthorizedException(
            "missing or wrong admin token: send Authorization: Bearer <ADMIN_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )


def shop_path(shop: str) -> str:
    """A `{shop}` path parameter as a domain; 400 when it is not a *.myshopify.com domain."""
    domain = shop_domain(shop)
    if domain is None:
        raise ValidationException("shop must be a *.myshopify.com domain")
    return domain
