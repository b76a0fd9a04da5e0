"""Money as Shopify sends it, held as Decimal in numeric(19, 4) columns."""

from __future__ import annotations

from decimal import Decimal

# numeric(19, 4) holds 15 digits before the decimal point.
MONEY_LIMIT = Decimal(10) ** 15


def validate_money(field: str, amount: Decimal | None) -> Decimal | None:
    if amount is None:
        return None
    if not amount.is_finite() or abs(amount) >= MONEY_LIMIT:
        raise ValueError(f"{field} must be a finite amount below 10^15, got {amount}")
    return amount + 0  # turns -0 into 0
