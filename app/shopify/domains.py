"""A shop is known by its `*.myshopify.com` domain, in lower case, everywhere in the service."""

from __future__ import annotations

import re

SHOP_DOMAIN = re.compile(r"[a-z0-9][a-z0-9-]*\.myshopify\.com")


def shop_domain(value: str) -> str | None:
    """The shop's domain in lower case; None when it is not a *.myshopify.com domain."""
    # ASCII before lowering: str.lower() turns a few other letters into ASCII
    # ones (the Kelvin sign into "k").
    domain = value.strip()
    if not domain.isascii():
        return None
    domain = domain.lower()
    if len(domain) > 255 or not SHOP_DOMAIN.fullmatch(domain):
        return None
    return domain
