"""GET /shops/{shop}/customer-events: the shop's events after a cursor, long-polled.

Behind the admin bearer token. Each poll is a short read transaction of its
own and no connection is held between polls (PgBouncer in transaction mode:
no LISTEN, no session state), so a waiting reader costs a timer, not a
connection.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.params import FromPath, QueryParameter

from app.db.enums import CustomerEventKind
from app.http.errors import BadRequest
from app.http.guards import admin_only, shop_path
from app.http.openapi import ADMIN_ERRORS, error_response, example_response
from app.http.state import database_of
from app.outbox.events import (
    MAX_PAGE,
    CustomerEvent,
    EventData,
    Position,
    position_of,
    shop_page,
)

MAX_WAIT_SECONDS = 30.0
# How often a waiting reader looks again.
POLL_SECONDS = 0.25


class CustomerEventPage(msgspec.Struct):
    """Events after the cursor, oldest first; pass `next` back as `after`."""

    shop: str
    events: list[CustomerEvent]
    next: str


class UnknownKind(BadRequest):
    pass


def _kinds(raw: str | None) -> list[CustomerEventKind] | None:
    if not raw:
        return None
    kinds = []
    for name in (part.strip() for part in raw.split(",")):
        try:
            kinds.append(CustomerEventKind(name))
        except ValueError:
            known = ", ".join(kind.value for kind in CustomerEventKind)
            raise UnknownKind(f"kinds: {name[:40]!r} is not one of {known}") from None
    return kinds


_EXAMPLE = CustomerEventPage(
    shop="example.myshopify.com",
    events=[
        CustomerEvent(
            id=1042,
            shop="example.myshopify.com",
            customer_id="207119551",
            kind=CustomerEventKind.first_order,
            occurred_at=datetime(2026, 12, 7, 10, 0, 0, 412000, tzinfo=UTC),
            data=EventData(
                order_id="820982911946154508",
                order_created_at=datetime(2026, 12, 7, 9, 59, 58, tzinfo=UTC),
            ),
        ),
        CustomerEvent(
            id=1051,
            shop="example.myshopify.com",
            customer_id="115310627",
            kind=CustomerEventKind.segment_change,
            occurred_at=datetime(2026, 12, 7, 10, 5, 0, 120000, tzinfo=UTC),
            data=EventData(from_="loyal", to="at_risk"),
        ),
    ],
    next=Position(0, 771204, 1051).cursor(),
)
FEED_RESPONSES = {
    200: example_response("The shop's customer events after the cursor", _EXAMPLE),
    400: error_response(
        400, "A bad cursor, kind, limit or wait", "cursor is not one this service issued"
    ),
    **ADMIN_ERRORS,
}


class CustomerEventsController(Controller):
    guards = (admin_only,)
    tags = ("customer events",)
    security = ({"bearer": []},)

    @get(
        "/shops/{shop:str}/customer-events",
        summary="A shop's customer events (first_order, segment_change, tag_added) after a cursor",
        description=(
            "Events after `after` (a `next` from an earlier answer; none: from the oldest kept),"
            " oldest first, at most `limit`, only of `kinds` (comma-separated) if given. When"
            " none is ready, waits up to `wait` seconds (at most 30) for one. Pass `next` back"
            " as `after`: a cursor stays valid across restarts. 400 for a cursor this service"
            " did not issue."
        ),
        responses=FEED_RESPONSES,
    )
    async def customer_events(
        self,
        request: Request[Any, Any, Any],
        shop: FromPath[str],
        after: Annotated[
            str | None, QueryParameter(description="`next` of an earlier page")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 100,
        kinds: Annotated[
            str | None, QueryParameter(description="comma-separated: first_order,tag_added")
        ] = None,
        wait: Annotated[float, QueryParameter(ge=0, le=MAX_WAIT_SECONDS)] = 0.0,
    ) -> CustomerEventPage:
        domain = shop_path(shop)
        position = position_of(after)
        wanted = _kinds(kinds)
        database = database_of(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            async with database.reading() as connection:
                page = await shop_page(connection, domain, position, limit, wanted)
            if page.events or loop.time() + POLL_SECONDS > deadline:
                return CustomerEventPage(domain, page.events, page.next.cursor())
            position = page.next
            await asyncio.sleep(POLL_SECONDS)
