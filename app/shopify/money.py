"""Money as Shopify sends it, held as Decimal in numeric(19, 4) columns.

An amount must be one numeric(19, 4) holds exactly: not negative (no price or
total Shopify sends is), below 10^15, with at most 4 decimal places (PostgreSQL
would round 0.00001 to 0 without a word).
"""

from __future__ import annotations

from decimal import Decimal

# numeric(19, 4) holds 15 digits before the decimal point.
MONEY_LIMIT = Decimal(10) ** 15
SMALLEST_UNIT = Decimal("0.0001")


def validate_money(field: str, amount: Decimal | None) -> Decimal | None:
    if amount is None:
        return None
    if not amount.is_finite() or not 0 <= amount < MONEY_LIMIT:
        raise ValueError(f"{field} must be an amount from 0 to below 10^15, got {amount}")
    if amount != amount.quantize(SMALLEST_UNIT):
        raise ValueError(f"{field} {amount} has more than 4 decimal places")
    return amount + 0  # turns -0 into 0
