"""The ledger filter of `events` and `replay`, from their --shop, --topic, ... options."""

from __future__ import annotations

import argparse

from app.admin_api.events import EventFilter
from app.db.enums import DeliveryStatus


def event_filter(args: argparse.Namespace) -> EventFilter:
    """The ledger filter given by the --shop, --topic, ... options."""
    return EventFilter(
        shop=args.shop,
        topic=args.topic,
        status=DeliveryStatus(args.status) if args.status else None,
        since=args.since,
        until=args.until,
        webhook_ids=args.webhook_ids,
        event_id=getattr(args, "event_id", None),
        ids=getattr(args, "ids", []),
    )
