"""OpenAPI helpers: what types cannot say (examples, documented error answers).

Answers are typed (msgspec Structs), so /schema describes their shape; an
example is built from a real instance of that type, so it cannot drift from it.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Example

from app.http.errors import UNAVAILABLE_DETAIL, ErrorBody


def example_response(description: str, *values: msgspec.Struct) -> ResponseSpec:
    """A response of the values' type, with each value as an example."""
    return ResponseSpec(
        data_container=type(values[0]),
        description=description,
        generate_examples=False,
        examples=[Example(summary=description, value=_plain(value)) for value in values],
    )


def error_response(status_code: int, description: str, detail: str) -> ResponseSpec:
    """An error answer (`ErrorBody`) with one example."""
    return example_response(description, ErrorBody(status_code, detail))


def _plain(value: msgspec.Struct) -> Any:
    return msgspec.json.decode(msgspec.json.encode(value))


UNAVAILABLE = error_response(
    503, "The database is unavailable (with Retry-After); nothing was changed", UNAVAILABLE_DETAIL
)
ADMIN_ERRORS: dict[int, ResponseSpec] = {
    401: error_response(
        401,
        "Missing or wrong admin token",
        "missing or wrong admin token: send Authorization: Bearer <ADMIN_TOKEN>",
    ),
    403: error_response(
        403,
        "The admin API is disabled (ADMIN_TOKEN is not set)",
        "the admin API is disabled: set ADMIN_TOKEN to enable it",
    ),
    503: UNAVAILABLE,
}
