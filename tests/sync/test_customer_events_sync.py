"""What a sync announces: first orders and tags arriving through the Admin API, once;
and the scoring pass that ends a full sync."""

from __future__ import annotations

from collections import Counter

from app.config import Settings
from app.db.database import Database
from app.db.enums import SyncRunStatus
from app.devtools.standin import FakeShop
from tests.support.customer_events import events, scores
from tests.support.sync import sync


async def test_a_sync_announces_first_orders_and_tags_once(
    db: Database, sync_config: Settings, shop: FakeShop
) -> None:
    buyer = shop.add_customer(tags=["vip", "wholesale"], created_at="2026-01-01T00:00:00Z")
    shop.add_order(customer_id=buyer["id"], created_at="2026-02-01T00:00:00Z")
    shop.add_order(customer_id=buyer["id"], created_at="2026-03-01T00:00:00Z")
    tester = shop.add_customer()
    shop.add_order(customer_id=tester["id"], test=True)

    _, status = await sync(db, sync_config, shop)

    assert status is SyncRunStatus.succeeded
    first_orders = await events(db, shop.domain, "first_order")
    assert [event["customer"] for event in first_orders] == [str(buyer["id"])]
    tags = [(e["customer"], e["data"]["tag"]) for e in await events(db, shop.domain, "tag_added")]
    assert sorted(tags) == [(str(buyer["id"]), "vip"), (str(buyer["id"]), "wholesale")]
    # The full sync ended with a scoring pass: the buyer has a segment, the tester none.
    stored = await scores(db, shop.domain)
    assert stored[str(buyer["id"])][3] is not None
    assert stored[str(tester["id"])] == (None, None, None, None)
    announced = len(await events(db, shop.domain))

    # Everything fetched again: nothing changed, nothing announced.
    _, again = await sync(db, sync_config, shop, full=True)

    assert again is SyncRunStatus.succeeded
    assert len(await events(db, shop.domain)) == announced
    # A new tag and the tester's first real order arrive through the next sync.
    shop.update_customer(buyer["id"], tags=["vip", "wholesale", "gold"])
    shop.add_order(customer_id=tester["id"])

    await sync(db, sync_config, shop)

    kinds = Counter((e["kind"], e["customer"]) for e in await events(db, shop.domain))
    assert kinds[("first_order", str(tester["id"]))] == 1
    assert kinds[("first_order", str(buyer["id"]))] == 1
    assert kinds[("tag_added", str(buyer["id"]))] == 3
