"""Shopify's ids: 64-bit integers, whether sent as numbers, legacy ids or in GIDs."""

from __future__ import annotations

MAX_SHOPIFY_ID = 2**63 - 1


def id_number(text: str) -> int | None:
    """`text` as an id (1 to 2^63 - 1); None when it is not one.

    ASCII digits only: int() also reads other scripts' digits ("١٢٣" is 123).
    """
    if not text.isascii() or not text.isdigit():
        return None
    number = int(text)
    return number if 1 <= number <= MAX_SHOPIFY_ID else None
