"""Removing personal data from Shopify payloads (customers/redact, and deliveries after it)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import msgspec

# Fields that hold personal data wherever they appear in the payloads of
# Shopify's topics (customers, orders, checkouts, fulfillments, refunds, and the
# customer events): contact details, addresses, what the buyer wrote (notes,
# note attributes, line-item properties), the customer's tags, and what
# identifies their browser session or their order's status page.
PERSONAL_FIELDS = frozenset(
    {
        # contact
        "email",
        "contact_email",
        "customer_email",
        "phone",
        "first_name",
        "last_name",
        "multipass_identifier",
        # addresses (the country is kept)
        "address1",
        "address2",
        "city",
        "province",
        "province_code",
        "zip",
        "company",
        "latitude",
        "longitude",
        # what the buyer or the merchant wrote about them
        "note",
        "note_attributes",
        "properties",
        "tags",
        # their browser, session and links to their order
        "browser_ip",
        "client_details",
        "customer_locale",
        "landing_site",
        "landing_site_ref",
        "referring_site",
        "order_status_url",
        "abandoned_checkout_url",
        "token",
        "cart_token",
        "checkout_token",
    }
)
# Objects whose `name` is a person's name (elsewhere `name` is an order number or a product).
PERSONAL_OBJECTS = frozenset(
    {
        "customer",
        "billing_address",
        "shipping_address",
        "default_address",
        "addresses",
        "destination",
        "destination_location",
    }
)
# Fields whose text identifies a person in any payload: collected from the
# payloads about a customer, to find them in payloads of unknown shapes.
IDENTIFYING_FIELDS = frozenset({"email", "contact_email", "customer_email", "phone"})

# Floats as Decimal, so a scrubbed payload keeps every number exactly.
_decoder = msgspec.json.Decoder(float_hook=Decimal)
_encoder = msgspec.json.Encoder(decimal_format="number")


def scrub(document: Any, known_values: Iterable[str] = ()) -> Any:
    """A copy of a decoded JSON document with personal data replaced by null.

    Personal fields are cleared wherever they appear; so is any string that
    contains one of `known_values` (the customer's email, phone or name), which
    catches them in free text and in payload shapes this service does not know.
    """
    copy = _decoder.decode(_encoder.encode(document))
    _scrub_in_place(copy, known_values)
    return copy


def scrub_text(payload: str, known_values: Iterable[str] = ()) -> str:
    """scrub() for JSON text."""
    document = _decoder.decode(payload)
    _scrub_in_place(document, known_values)
    return _encoder.encode(document).decode()


def identifiers_in(payload: str) -> set[str]:
    """The emails and phone numbers a JSON document holds (lower case), wherever they are."""
    found: set[str] = set()
    pending: list[Any] = [_decoder.decode(payload)]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            for field, item in value.items():
                if field in IDENTIFYING_FIELDS and isinstance(item, str) and item.strip():
                    found.add(item.strip().lower())
                elif isinstance(item, dict | list):
                    pending.append(item)
        elif isinstance(value, list):
            pending.extend(value)
    return found


def _scrub_in_place(document: Any, known_values: Iterable[str]) -> None:
    # An explicit stack rather than recursion: any depth the decoder accepts works.
    needles = tuple(value.lower() for value in known_values if value)
    root = [document]
    # (container, key or index, whether the value sits in a personal object)
    pending: list[tuple[Any, Any, bool]] = [(root, 0, False)]
    while pending:
        container, key, personal = pending.pop()
        value = container[key]
        if isinstance(value, dict):
            for field, item in value.items():
                if field in PERSONAL_FIELDS or (personal and field == "name"):
                    value[field] = None
                elif isinstance(item, dict | list | str):
                    pending.append((value, field, field in PERSONAL_OBJECTS))
        elif isinstance(value, list):
            pending.extend((value, index, personal) for index in range(len(value)))
        elif isinstance(value, str) and any(needle in value.lower() for needle in needles):
            container[key] = None
