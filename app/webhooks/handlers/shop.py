"""app/uninstalled: remember when the app was removed from the shop."""

from __future__ import annotations

from app.db.database import Transaction
from app.webhooks.handlers.base import Handler, check_shop, in_transaction
from app.webhooks.ledger import Recording, lock, record
from app.webhooks.outcomes import Outcome
from app.webhooks.payloads import ShopPayload

_UNINSTALLED = """
UPDATE shops
SET uninstalled_at = greatest(uninstalled_at, least($2::timestamptz, now())),
    shopify_shop_id = coalesce($3, shopify_shop_id)
WHERE shop_id = $1
"""


async def _uninstalled(tx: Transaction, recording: Recording, shop: ShopPayload) -> Outcome:
    await lock(tx, recording.shop)
    await check_shop(tx, recording.shop, shop.myshopify_domain, shop.id)
    if await record(tx, recording) is None:
        return Outcome.duplicate
    # The app is uninstalled from the shop. (X-Shopify-Triggered-At is not
    # signed: a time in the future is taken as now; least() ignores a missing
    # one. Not coalesce(): Citus refuses now() inside it in an UPDATE.)
    await tx.execute(_UNINSTALLED, recording.shop, recording.triggered_at, str(shop.id))
    # Shopify revokes the app's token on uninstall: forget it, and stop syncing.
    await tx.execute("DELETE FROM shop_credentials WHERE shop_id = $1", recording.shop)
    return Outcome.processed


APP_UNINSTALLED = Handler(ShopPayload, in_transaction(_uninstalled))
