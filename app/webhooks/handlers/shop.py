"""app/uninstalled: remember when the app was removed from the shop."""

from __future__ import annotations

from app.db.database import Transaction
from app.webhooks.handlers.base import Handler, Outcome, in_transaction
from app.webhooks.ledger import Recording, lock, record
from app.webhooks.payloads import ShopPayload

_UNINSTALLED = """
UPDATE shops
SET uninstalled_at = greatest(uninstalled_at, coalesce($2, now())),
    shopify_shop_id = coalesce($3, shopify_shop_id)
WHERE shop_id = $1
"""


async def _uninstalled(tx: Transaction, recording: Recording, shop: ShopPayload) -> Outcome:
    await lock(tx, recording.shop)
    if await record(tx, recording) is None:
        return Outcome.duplicate
    shopify_shop_id = str(shop.id) if shop.id else None
    await tx.execute(_UNINSTALLED, recording.shop, recording.triggered_at, shopify_shop_id)
    return Outcome.processed


APP_UNINSTALLED = Handler(ShopPayload, in_transaction(_uninstalled))
