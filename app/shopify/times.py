"""Times Shopify sends, checked before anything is stored or compared with them.

Every time in Shopify's payloads and answers says when something happened, so
none can be far ahead of this service's clock: an `updated_at` from the future
would be stored as the row's version and make every later real change stale
(and move the sync's watermark past every change to come). A time more than
CLOCK_SKEW ahead is refused, as is one whose UTC value falls outside the years
1 to 9999 that both PostgreSQL's timestamptz and Python's datetime hold (such
a value would be stored, then fail every read of the row).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# How far ahead of this service's clock a time may be (clocks drift, NTP or not).
CLOCK_SKEW = timedelta(hours=1)


def check_time(field: str, value: datetime | None, now: datetime | None = None) -> None:
    """ValueError naming `field` when `value` is out of range or in the future."""
    if value is None:
        return
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"{field} {value.isoformat()} is outside the years 1 to 9999 in UTC"
        ) from None
    if utc > (now or datetime.now(UTC)) + CLOCK_SKEW:
        raise ValueError(
            f"{field} {value.isoformat()} is in the future"
            " (more than an hour ahead of this service's clock)"
        )


def check_times(owner: object, *fields: str) -> None:
    """check_time for each named attribute of `owner` (a decoded payload or node)."""
    now = datetime.now(UTC)
    for field in fields:
        check_time(field, getattr(owner, field), now)
