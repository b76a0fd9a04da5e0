"""Opaque cursors: base64 of the (sort value, id) pair of the item they point at.

Encoding the sort key instead of a position keeps pagination stable while the
data changes underneath, as Shopify's cursors are.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any


class CursorError(ValueError):
    """The client sent a cursor this server did not make (or for another sort key)."""


def encode_cursor(key: tuple[Any, int]) -> str:
    value, number = key
    encoded = ["d", value.isoformat()] if isinstance(value, datetime) else ["i", value]
    raw = json.dumps({"last": encoded, "id": number}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort_kind: str) -> tuple[Any, int]:
    """The key a cursor encodes; `sort_kind` ("d" or "i") must match the current sort."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        kind, value = data["last"]
        number = int(data["id"])
    except (binascii.Error, ValueError, KeyError, TypeError) as error:
        raise CursorError(f"Invalid cursor: {cursor!r}") from error
    if kind != sort_kind:
        raise CursorError("Cursor does not match the current sort key")
    return (datetime.fromisoformat(value) if kind == "d" else int(value)), number
