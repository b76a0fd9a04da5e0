"""What the admin API answers about the ledger, typed, so that /schema describes it exactly."""

from __future__ import annotations

import msgspec

from app.webhooks.recorded import Event


class EventPage(msgspec.Struct):
    """Recorded deliveries, newest first; `next_cursor` continues the listing."""

    events: list[Event]
    next_cursor: str | None = None
