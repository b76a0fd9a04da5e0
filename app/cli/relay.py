"""`python -m app events relay`: publish customer events to NATS JetStream until stopped."""

from __future__ import annotations

import asyncio
import sys

from app.cli.database import database_url, started_database
from app.cli.sync import until_stopped
from app.config import Settings
from app.outbox.relay import Relay, RelayTarget


def run_relay(settings: Settings) -> int:
    if not settings.events_nats_url:
        print(
            "error: EVENTS_NATS_URL is not set: the relay needs a NATS server with JetStream"
            " (e.g. nats://127.0.0.1:4222)",
            file=sys.stderr,
        )
        return 2
    target = RelayTarget(
        settings.events_nats_url, settings.events_nats_stream, settings.events_nats_subject
    )
    with database_url(settings) as url:
        asyncio.run(_relay(settings, url, target))
    return 0


async def _relay(settings: Settings, url: str, target: RelayTarget) -> None:
    async with started_database(settings, url) as database:
        await until_stopped(Relay(database, target).run())
