"""bulk_operations/finish: recorded with its payload, so a waiting full sync sees it."""

from __future__ import annotations

from app.db.database import Transaction
from app.db.enums import DeliveryStatus
from app.webhooks.handlers.base import Handler, in_transaction
from app.webhooks.ledger import Recording, lock, record
from app.webhooks.outcomes import Outcome
from app.webhooks.payloads import BulkOperationFinishPayload


async def _bulk_finished(
    tx: Transaction, recording: Recording, payload: BulkOperationFinishPayload
) -> Outcome:
    # Recorded with its payload: the sync looks for it in the ledger (app/sync/runner.py).
    await lock(tx, recording.shop)
    if await record(tx, recording, DeliveryStatus.processed) is None:
        return Outcome.duplicate
    return Outcome.processed


FINISHED = Handler(BulkOperationFinishPayload, in_transaction(_bulk_finished))
