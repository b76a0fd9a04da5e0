"""app/uninstalled: remember when the app was removed from the shop."""

from __future__ import annotations

from app.db.database import Locks, Transaction
from app.webhooks.handlers.base import Handler, Outcome, delivery_locks
from app.webhooks.ledger import RECORD_ONLY, Recording
from app.webhooks.payloads import ShopPayload

_UNINSTALLED = """
UPDATE shops
SET uninstalled_at = greatest(uninstalled_at, coalesce($2, now())),
    shopify_shop_id = coalesce($3, shopify_shop_id)
WHERE shop_id = $1
"""


def _locks(shop_id: str, payload: ShopPayload) -> Locks:
    return delivery_locks(shop_id)


async def _uninstalled(tx: Transaction, recording: Recording, shop: ShopPayload) -> Outcome:
    statement = recording.statement(RECORD_ONLY)
    if await tx.fetchval(statement.text, *recording.args(statement)) is None:
        return Outcome.duplicate
    triggered_at = recording.values.get("triggered_at")
    await tx.execute(
        _UNINSTALLED, recording.shop_id, triggered_at, str(shop.id) if shop.id else None
    )
    return Outcome.processed


APP_UNINSTALLED = Handler(ShopPayload, _locks, _uninstalled)
