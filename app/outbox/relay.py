"""The relay: customer_events to NATS JetStream, each event once after deduplication.

`python -m app events relay` (EVENTS_NATS_URL) reads the events in the order
they become visible (app/outbox/events.py), publishes each to
`<EVENTS_NATS_SUBJECT>.<kind>` with `Nats-Msg-Id` = the event id (JetStream
drops a second copy within the stream's duplicate window) and the shop in the
`Shopify-Shop-Domain` header, waits for the broker to acknowledge the whole
batch, and only then stores its position (customer_event_relays). Killed at
any point, or cut off from the broker, it starts again from the stored
position: what it had published after it is published again and dropped as a
duplicate, so every event reaches the stream once. Positions are kept per node
group: one on one PostgreSQL, one per worker on a Citus cluster, whose
workers each count their own transaction ids.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress
from dataclasses import dataclass

import msgspec
import nats
from nats.js import JetStreamContext
from nats.js.api import PubAck, StreamConfig
from nats.js.errors import NotFoundError

from app.db.database import Database, Transaction, is_database_failure
from app.outbox.events import Position, RelayEvent, horizons, relay_page

log = logging.getLogger("app.outbox")

BATCH_SIZE = 1000
# How often an idle relay looks for new events.
POLL_SECONDS = 0.2
# How long the broker may take to acknowledge a batch before it is sent again.
ACK_TIMEOUT = 10.0
# After a failure (broker or database away), the next attempt waits this long.
RETRY_SECONDS = 1.0
# A stream the relay creates keeps message ids this long to drop duplicates:
# longer than a restart takes, short enough for the server to hold them.
DUPLICATE_WINDOW_SECONDS = 600.0
PROGRESS_LOG_SECONDS = 10.0

_LOAD = "SELECT node_group, transaction_id, event_id FROM customer_event_relays WHERE name = $1"
# Never moves back: a second relay of the same name (which should not run)
# cannot undo the first one's progress.
_STORE = """
INSERT INTO customer_event_relays AS r
    (name, node_group, transaction_id, event_id, relayed, updated_at)
VALUES ($1, $2, $3, $4, $5, now())
ON CONFLICT (name, node_group) DO UPDATE
SET transaction_id = excluded.transaction_id, event_id = excluded.event_id,
    relayed = r.relayed + excluded.relayed, updated_at = excluded.updated_at
WHERE (r.transaction_id, r.event_id) < (excluded.transaction_id, excluded.event_id)
"""

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class RelayTarget:
    url: str
    stream: str
    subject: str  # the prefix: events go to <subject>.<kind>


class Relay:
    def __init__(self, database: Database, target: RelayTarget) -> None:
        self.database = database
        self.target = target
        self.relayed = 0

    async def run(self) -> None:
        """Relay until cancelled, coming back after any failure."""
        while True:
            try:
                await self._connected()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # The broker or the database away, or refusing: try again soon,
                # from the stored position.
                expected = isinstance(error, nats.errors.Error | TimeoutError | OSError)
                level = logging.WARNING if expected or is_database_failure(error) else logging.ERROR
                log.log(level, "relay interrupted", exc_info=error)
                await asyncio.sleep(RETRY_SECONDS)

    async def _connected(self) -> None:
        client = await nats.connect(
            self.target.url,
            connect_timeout=2,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
        )
        try:
            jetstream = client.jetstream()
            await self._ensure_stream(jetstream)
            await self._relay(jetstream)
        finally:
            with suppress(Exception):
                await client.close()

    async def _ensure_stream(self, jetstream: JetStreamContext) -> None:
        """Create the stream if there is none; an existing one keeps its own settings."""
        try:
            await jetstream.stream_info(self.target.stream)
        except NotFoundError:
            await jetstream.add_stream(
                StreamConfig(
                    name=self.target.stream,
                    subjects=[f"{self.target.subject}.>"],
                    duplicate_window=DUPLICATE_WINDOW_SECONDS,
                )
            )
            log.info("stream created", extra={"fields": {"stream": self.target.stream}})

    async def _relay(self, jetstream: JetStreamContext) -> None:
        positions = await self._stored_positions()
        logged = time.monotonic()
        visible: dict[int, int] = {}
        caught_up = True
        while True:
            # A horizon read earlier still holds (it only moves forward): while a
            # group has more below it, the relay pages on without asking again.
            if caught_up:
                async with self.database.reading() as connection:
                    visible = await horizons(connection)
            relayed_any = full_page = False
            for group, horizon in sorted(visible.items()):
                position = positions.get(group, Position())
                async with self.database.reading() as connection:
                    batch = await relay_page(connection, group, position, horizon, BATCH_SIZE)
                if not batch:
                    continue
                relayed_any = True
                full_page = full_page or len(batch) == BATCH_SIZE
                published = await self._publish(jetstream, batch)
                positions[group] = batch[-1].position
                await self._store(group, positions[group], published)
                self.relayed += published
            caught_up = not full_page
            if not relayed_any:
                await asyncio.sleep(POLL_SECONDS)
            if time.monotonic() - logged >= PROGRESS_LOG_SECONDS:
                logged = time.monotonic()
                log.info("events relayed", extra={"fields": self._progress(positions)})

    async def _publish(self, jetstream: JetStreamContext, batch: list[RelayEvent]) -> int:
        """Publish the batch (events of erased shops left out); return once all are acknowledged."""
        acks: list[asyncio.Future[PubAck]] = []
        try:
            for item in batch:
                if item.erased:
                    continue
                event = item.event
                acks.append(
                    await jetstream.publish_async(
                        f"{self.target.subject}.{event.kind.value}",
                        _encoder.encode(event),
                        headers={"Nats-Msg-Id": str(event.id), "Shopify-Shop-Domain": event.shop},
                    )
                )
            async with asyncio.timeout(ACK_TIMEOUT):
                await asyncio.gather(*acks)
        finally:
            for ack in acks:
                ack.cancel()  # a no-op once acknowledged; frees the slot of one never answered
        return len(acks)

    async def _stored_positions(self) -> dict[int, Position]:
        async with self.database.connection() as connection:
            rows = await connection.fetch(_LOAD, self.target.stream)
        return {
            row["node_group"]: Position(0, row["transaction_id"], row["event_id"]) for row in rows
        }

    async def _store(self, group: int, position: Position, published: int) -> None:
        async def store(tx: Transaction) -> None:
            await tx.execute(
                _STORE,
                self.target.stream,
                group,
                position.transaction_id,
                position.event_id,
                published,
            )

        await self.database.run_in_transaction(store)

    def _progress(self, positions: dict[int, Position]) -> dict[str, object]:
        return {
            "stream": self.target.stream,
            "relayed": self.relayed,
            "positions": {
                str(group): f"{position.transaction_id}.{position.event_id}"
                for group, position in sorted(positions.items())
            },
        }
