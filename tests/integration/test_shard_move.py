"""A shop's feed across a move of its shards to another Citus worker (Citus only).

Transaction ids are a node's own: the events written after the move carry the
new worker's, which may be far below the old one's. The feed reads a shop by
(epoch, transaction_id, id), the epoch raised by the first event written on the
new node (customer_events_epoch), so a reader who had read everything before
the move reads on from its cursor.
"""

from __future__ import annotations

from typing import Any

import httpx

from app.db.database import Database
from tests.support import citus, queries, shopify
from tests.support.customer_events import feed
from tests.support.shopify import SHOP, deliver

pytestmark = citus.required


async def test_a_shops_feed_reads_on_across_a_move_of_its_shards(
    client: httpx.AsyncClient, db: Database, database_url: str
) -> None:
    here = await citus.where_shop_locks(database_url, SHOP)
    there = await citus.other_worker(database_url, SHOP)
    # The shop's worker's transaction ids far ahead of the other's.
    await citus.use_transaction_ids(here, beyond=await citus.next_transaction_id(there) + 100)
    assert await deliver(client, "customers/update", shopify.customer(1, tags="before")) == (
        "processed"
    )
    before = await feed_until_events(client)
    assert [event["data"] for event in before["events"]] == [{"tag": "before"}]

    await citus.move_shop(database_url, SHOP, to=there)
    assert await citus.where_shop_locks(database_url, SHOP) == there
    assert await deliver(client, "customers/update", shopify.customer(2, tags="after")) == (
        "processed"
    )

    written = await queries.fetch(
        db,
        "SELECT transaction_id, node_group, epoch FROM customer_events WHERE shop_id = $1"
        " ORDER BY epoch",
        SHOP,
    )
    assert written[1]["transaction_id"] < written[0]["transaction_id"], "the ids do not lag"
    assert written[1]["node_group"] != written[0]["node_group"]
    assert written[1]["epoch"] > written[0]["epoch"]
    after = await feed_until_events(client, after=before["next"])
    assert [event["data"] for event in after["events"]] == [{"tag": "after"}]
    assert (await feed(client, after=after["next"]))["events"] == []


async def feed_until_events(client: httpx.AsyncClient, **params: object) -> dict[str, Any]:
    """The first page that holds events. An event shows once every older transaction on
    its node has ended, in any database (other tests' included): it may take a while."""
    for _ in range(12):
        page = await feed(client, wait=5, **params)
        if page["events"]:
            return page
    raise AssertionError("no event showed in the feed within a minute")
