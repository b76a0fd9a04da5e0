"""A fake shop's data: customers, orders and line items, plus the leaky bucket.

Records are plain dicts with snake_case keys. Updates replace a record (copy on
write) instead of mutating it, so a bulk operation can keep a cheap snapshot of
the record lists while the test goes on changing the shop.
"""

from __future__ import annotations

import bisect
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

# Ids above 2**53: a consumer that parses them as JSON numbers or floats loses digits.
CUSTOMER_ID_BASE = 7_300_000_000_000_000_000
ORDER_ID_BASE = 7_400_000_000_000_000_000
LINE_ITEM_ID_BASE = 7_500_000_000_000_000_000
VARIANT_ID_BASE = 7_600_000_000_000_000_000
PRODUCT_ID_BASE = 7_700_000_000_000_000_000
WEBHOOK_SUBSCRIPTION_ID_BASE = 1_200_000_000_000

CENT = Decimal("0.01")
DEFAULT_SCOPES = ("read_customers", "read_orders", "read_all_orders")
Record = dict[str, Any]


def to_datetime(value: datetime | str | None) -> datetime | None:
    """Aware UTC datetime at whole seconds (Shopify's precision) from a datetime or ISO string."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: give an offset")
    return value.astimezone(UTC).replace(microsecond=0)


def gid(type_name: str, number: int) -> str:
    return f"gid://shopify/{type_name}/{number}"


def parse_gid(value: str) -> tuple[str, int] | None:
    """("Customer", 123) from "gid://shopify/Customer/123", None if it is not one."""
    prefix = "gid://shopify/"
    if not value.startswith(prefix):
        return None
    type_name, _, number = value[len(prefix) :].partition("/")
    number = number.split("?", 1)[0]
    if not type_name or not number.isdigit():
        return None
    return type_name, int(number)


class LeakyBucket:
    """Shopify's cost bucket: starts full, refills continuously at `restore_rate` points/s."""

    def __init__(
        self, maximum: float, restore_rate: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.maximum = float(maximum)
        self.restore_rate = float(restore_rate)
        self._clock = clock
        self._level = float(maximum)
        self._at = clock()

    def available(self) -> float:
        now = self._clock()
        self._level = min(self.maximum, self._level + (now - self._at) * self.restore_rate)
        self._at = now
        return self._level

    def try_take(self, points: float) -> bool:
        """Take `points` if they are there now; never lets the level go below zero."""
        if points > self.available():
            return False
        self._level -= points
        return True

    def refund(self, points: float) -> None:
        self._level = min(self.maximum, self.available() + points)

    def drain(self, to: float = 0.0) -> None:
        """Empty the bucket (down to `to`), for throttling tests."""
        self.available()
        self._level = float(to)


@dataclass
class BulkOperation:
    """One bulk query of a shop; its status advances as the client polls it."""

    number: int
    query: str
    api_version: str
    created_at: datetime
    status: str = "CREATED"
    type: str = "QUERY"
    polls: int = 0
    polls_to_complete: int = 1
    fail: str | None = None  # None, "partial" or "full"
    shuffle_children: bool = False
    completed_at: datetime | None = None
    url: str | None = None
    partial_data_url: str | None = None
    error_code: str | None = None
    object_count: int = 0
    root_object_count: int = 0
    file_size: int | None = None
    ready: threading.Event = field(default_factory=threading.Event, repr=False)
    result: Any = field(default=None, repr=False)  # bulk.BulkResult once the file is written

    @property
    def id(self) -> str:
        return gid("BulkOperation", self.number)

    @property
    def running(self) -> bool:
        return self.status in ("CREATED", "RUNNING")


@dataclass(frozen=True)
class SearchTerm:
    """One `field:op value` term of Shopify's search syntax."""

    field: str
    op: str
    value: Any


@dataclass
class Page:
    items: list[Record]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool


SORT_FIELDS = {"ID": "id", "UPDATED_AT": "updated_at", "CREATED_AT": "created_at"}


class FakeShop:
    """A shop's data and per-shop API state (bucket, bulk operations, what was asked)."""

    def __init__(
        self,
        domain: str,
        *,
        token: str | None = "shpat_test",
        bucket_size: float = 1000,
        restore_rate: float = 100.0,
        scopes: Sequence[str] = DEFAULT_SCOPES,
        currency: str = "USD",
        name: str | None = None,
    ) -> None:
        self.domain = domain
        self.token = token
        self.scopes = tuple(scopes)
        self.currency = currency
        self.name = name or domain.split(".", 1)[0]
        self.lock = threading.RLock()
        self.bucket = LeakyBucket(bucket_size, restore_rate)
        self.min_available_seen = float(bucket_size)
        # Queries refused because the bucket could not pay for them.
        self.throttled_answers = 0
        self.bulk_operations: list[BulkOperation] = []
        self.bulk_polls_to_complete = 1
        self.bulk_shuffle_children = False
        self.deprecated_fields_used: set[str] = set()
        self.queries: list[tuple[str, dict[str, Any] | None]] = []
        self._customers: dict[int, Record] = {}
        self._orders: dict[int, Record] = {}
        self._orders_by_customer: dict[int, set[int]] = {}
        self._line_item_order: dict[int, int] = {}
        self._next = {"customer": 1, "order": 1, "line_item": 1, "bulk": 1}
        self._last_now: datetime | None = None
        self._version = 0
        self._sorted: dict[tuple[str, str], tuple[int, list[Record], list[tuple[Any, int]]]] = {}
        self._fail_next_bulk: str | None = None
        self.results: Any = None  # bulk.BulkResultStore, set by the server
        # Shop-specific webhook subscriptions (webhookSubscriptions / webhookSubscriptionCreate).
        self.subscriptions: list[Record] = []

    # -- time ---------------------------------------------------------------------------------

    def now(self) -> datetime:
        """UTC now at whole seconds, strictly increasing so every change sorts after the last."""
        with self.lock:
            now = datetime.now(UTC).replace(microsecond=0)
            if self._last_now is not None and now <= self._last_now:
                now = self._last_now + timedelta(seconds=1)
            self._last_now = now
            return now

    # -- customers ----------------------------------------------------------------------------

    def add_customer(
        self,
        id: int | None = None,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        tags: Iterable[str] = (),
        created_at: datetime | str | None = None,
        updated_at: datetime | str | None = None,
        email_marketing_state: str = "SUBSCRIBED",
        email_opt_in_level: str | None = "SINGLE_OPT_IN",
        email_marketing_updated_at: datetime | str | None = None,
        sms_marketing_state: str | None = None,
        sms_opt_in_level: str | None = None,
        sms_marketing_updated_at: datetime | str | None = None,
        state: str = "ENABLED",
        note: str | None = None,
        verified_email: bool = True,
        **extra: Any,
    ) -> Record:
        """Add a customer; times default to now, the id to the next one above 2**53."""
        with self.lock:
            number = self._take_id("customer", CUSTOMER_ID_BASE, id)
            created = to_datetime(created_at) or self.now()
            record: Record = {
                "__typename": "Customer",
                "id": number,
                "first_name": first_name,
                "last_name": last_name,
                "email": email,
                "phone": phone,
                "tags": list(tags),
                "created_at": created,
                "updated_at": to_datetime(updated_at) or created,
                "email_marketing_state": email_marketing_state,
                "email_opt_in_level": email_opt_in_level,
                "email_marketing_updated_at": to_datetime(email_marketing_updated_at),
                "sms_marketing_state": sms_marketing_state,
                "sms_opt_in_level": sms_opt_in_level,
                "sms_marketing_updated_at": to_datetime(sms_marketing_updated_at),
                "state": state,
                "note": note,
                "verified_email": verified_email,
                **extra,
            }
            self._customers[number] = record
            self._changed()
            return dict(record)

    def update_customer(self, id: int, **changes: Any) -> Record:
        """Change fields; updated_at becomes now unless given."""
        with self.lock:
            record = {**self._customers[id], **self._normalise(changes)}
            if "updated_at" not in changes:
                record["updated_at"] = self.now()
            self._customers[id] = record
            self._changed()
            return dict(record)

    def remove_customer(self, id: int) -> None:
        """Delete silently: like Shopify, nothing in the API says it was ever there."""
        with self.lock:
            del self._customers[id]
            self._changed()

    def get_customer(self, id: int) -> Record | None:
        return self._customers.get(id)

    # -- orders -------------------------------------------------------------------------------

    def add_order(
        self,
        id: int | None = None,
        *,
        customer_id: int | None = None,
        name: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        currency: str | None = None,
        total_price: str | Decimal = "10.00",
        current_total_price: str | Decimal | None = None,
        financial_status: str | None = "PAID",
        fulfillment_status: str = "UNFULFILLED",
        cancelled_at: datetime | str | None = None,
        test: bool = False,
        closed: bool = False,
        tags: Iterable[str] = (),
        created_at: datetime | str | None = None,
        updated_at: datetime | str | None = None,
        line_items: Iterable[dict[str, Any]] = (),
        **extra: Any,
    ) -> Record:
        """Add an order with its line items (each a dict; missing ids are generated)."""
        with self.lock:
            number = self._take_id("order", ORDER_ID_BASE, id)
            created = to_datetime(created_at) or self.now()
            record: Record = {
                "__typename": "Order",
                "id": number,
                "customer_id": customer_id,
                "name": name or f"#{1000 + len(self._orders) + 1}",
                "email": email,
                "phone": phone,
                "currency": currency or self.currency,
                "total_price": Decimal(str(total_price)),
                "current_total_price": Decimal(str(current_total_price or total_price)),
                "financial_status": financial_status,
                "fulfillment_status": fulfillment_status,
                "cancelled_at": to_datetime(cancelled_at),
                "test": test,
                "closed": closed,
                "tags": list(tags),
                "created_at": created,
                "updated_at": to_datetime(updated_at) or created,
                "line_items": [self._line_item(item) for item in line_items],
                **extra,
            }
            self._store_order(record)
            self._changed()
            return dict(record)

    def update_order(self, id: int, **changes: Any) -> Record:
        """Change fields (line_items replaces the list); updated_at becomes now unless given."""
        with self.lock:
            old = self._orders[id]
            changes = self._normalise(changes)
            if "line_items" in changes:
                for item in old["line_items"]:
                    self._line_item_order.pop(item["id"], None)
                changes["line_items"] = [self._line_item(item) for item in changes["line_items"]]
            record = {**old, **changes}
            if "updated_at" not in changes:
                record["updated_at"] = self.now()
            self._unindex_order(old)
            self._store_order(record)
            self._changed()
            return dict(record)

    def remove_order(self, id: int) -> None:
        with self.lock:
            old = self._orders.pop(id)
            self._unindex_order(old)
            for item in old["line_items"]:
                self._line_item_order.pop(item["id"], None)
            self._changed()

    def get_order(self, id: int) -> Record | None:
        return self._orders.get(id)

    def get_line_item(self, id: int) -> Record | None:
        order = self._orders.get(self._line_item_order.get(id, -1))
        if order is None:
            return None
        return next((item for item in order["line_items"] if item["id"] == id), None)

    def orders_of(self, customer_id: int) -> list[Record]:
        with self.lock:  # the bulk writer calls this from its own thread
            ids = sorted(self._orders_by_customer.get(customer_id, ()))
            return [self._orders[number] for number in ids]

    @property
    def customers(self) -> list[Record]:
        """All customers (the live records: read, do not change them)."""
        return list(self._customers.values())

    @property
    def orders(self) -> list[Record]:
        return list(self._orders.values())

    # -- bulk and faults ----------------------------------------------------------------------

    def fail_next_bulk(self, partial: bool = True) -> None:
        """The next bulk op ends FAILED; `partial`: a partialDataUrl with half the lines."""
        self._fail_next_bulk = "partial" if partial else "full"

    def take_bulk_failure(self) -> str | None:
        failure, self._fail_next_bulk = self._fail_next_bulk, None
        return failure

    def next_bulk_number(self) -> int:
        return self._take_id("bulk", 0, None)

    def bulk_operation(self, number: int) -> BulkOperation | None:
        return next((op for op in self.bulk_operations if op.number == number), None)

    # -- generation ---------------------------------------------------------------------------

    def generate(
        self,
        customers: int = 100,
        orders: int = 500,
        line_items: int = 3,
        seed: int = 1,
        *,
        start: datetime | str = "2024-01-01T00:00:00Z",
        end: datetime | str = "2026-06-01T00:00:00Z",
    ) -> None:
        """Add deterministic random customers and orders (same seed, same shop)."""
        rng = random.Random(seed)
        begin, finish = to_datetime(start), to_datetime(end)
        assert begin is not None and finish is not None
        span = int((finish - begin).total_seconds())
        with self.lock:
            customer_ids = [self._generate_customer(rng, begin, span) for _ in range(customers)]
            for _ in range(orders):
                self._generate_order(rng, begin, span, customer_ids, line_items)
            self._changed()

    def _generate_customer(self, rng: random.Random, begin: datetime, span: int) -> int:
        number = self._take_id("customer", CUSTOMER_ID_BASE, None)
        n = number - CUSTOMER_ID_BASE
        created = begin + timedelta(seconds=rng.randrange(span))
        updated = created + timedelta(seconds=rng.randrange(86_400 * 30))
        has_phone = rng.random() < 0.5
        self._customers[number] = {
            "__typename": "Customer",
            "id": number,
            "first_name": rng.choice(FIRST_NAMES),
            "last_name": rng.choice(LAST_NAMES),
            "email": f"customer{n}@example.com" if rng.random() < 0.95 else None,
            "phone": f"+1555{n:07d}" if has_phone else None,
            "tags": rng.sample(TAGS, rng.randrange(3)),
            "created_at": created,
            "updated_at": updated,
            "email_marketing_state": rng.choice(("SUBSCRIBED", "NOT_SUBSCRIBED", "UNSUBSCRIBED")),
            "email_opt_in_level": "SINGLE_OPT_IN",
            "email_marketing_updated_at": created,
            "sms_marketing_state": "SUBSCRIBED" if has_phone else None,
            "sms_opt_in_level": "SINGLE_OPT_IN" if has_phone else None,
            "sms_marketing_updated_at": created if has_phone else None,
            "state": "ENABLED",
            "note": None,
            "verified_email": True,
        }
        return number

    def _generate_order(
        self, rng: random.Random, begin: datetime, span: int, customer_ids: list[int], items: int
    ) -> None:
        number = self._take_id("order", ORDER_ID_BASE, None)
        n = number - ORDER_ID_BASE
        created = begin + timedelta(seconds=rng.randrange(span))
        customer_id = rng.choice(customer_ids) if customer_ids and rng.random() < 0.9 else None
        lines = []
        total = Decimal(0)
        for _ in range(items):
            item_number = self._take_id("line_item", LINE_ITEM_ID_BASE, None)
            product = rng.randrange(1, 500)
            price = (Decimal(rng.randrange(100, 20_000)) / 100).quantize(CENT)
            quantity = rng.randrange(1, 4)
            total += price * quantity
            lines.append(
                {
                    "__typename": "LineItem",
                    "id": item_number,
                    "title": f"Product {product}",
                    "name": f"Product {product} - Default",
                    "quantity": quantity,
                    "current_quantity": quantity,
                    "sku": f"SKU-{product:05d}",
                    "price": price,
                    "variant_id": VARIANT_ID_BASE + product,
                    "product_id": PRODUCT_ID_BASE + product,
                }
            )
        cancelled = rng.random() < 0.03
        self._store_order(
            {
                "__typename": "Order",
                "id": number,
                "customer_id": customer_id,
                "name": f"#{1000 + n}",
                "email": f"customer{(customer_id or 0) - CUSTOMER_ID_BASE}@example.com"
                if customer_id
                else None,
                "phone": None,
                "currency": self.currency,
                "total_price": total,
                "current_total_price": Decimal(0) if cancelled else total,
                "financial_status": "REFUNDED" if cancelled else rng.choice(FINANCIAL),
                "fulfillment_status": rng.choice(("UNFULFILLED", "FULFILLED")),
                "cancelled_at": created + timedelta(hours=1) if cancelled else None,
                "test": False,
                "closed": False,
                "tags": [],
                "created_at": created,
                "updated_at": created + timedelta(seconds=rng.randrange(86_400 * 7)),
                "line_items": lines,
            }
        )

    # -- queries ------------------------------------------------------------------------------

    def visible_orders(self) -> list[Record]:
        """Orders the app may read: without read_all_orders only the last 60 days (Shopify)."""
        orders = self.sorted_records("order", "ID")
        if "read_all_orders" in self.scopes:
            return orders
        since = datetime.now(UTC) - timedelta(days=60)
        return [order for order in orders if order["created_at"] >= since]

    def sorted_records(self, kind: str, sort_key: str) -> list[Record]:
        return self._sorted_with_keys(kind, sort_key)[0]

    def page(
        self,
        kind: str,
        *,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        reverse: bool = False,
        sort_key: str = "ID",
        terms: Sequence[SearchTerm] = (),
        records: list[Record] | None = None,
    ) -> Page:
        """One page of a connection, sorted by (sort key, id); cursors encode that pair."""
        from .cursors import decode_cursor, encode_cursor

        sort_key = sort_key if sort_key in SORT_FIELDS else "ID"
        if records is None:
            items, keys = self._sorted_with_keys(kind, sort_key)
        else:
            items = sorted(records, key=sort_function(sort_key))
            keys = [sort_function(sort_key)(item) for item in items]
        if kind == "order" and records is None and "read_all_orders" not in self.scopes:
            visible = {id(order) for order in self.visible_orders()}
            pairs = [(i, k) for i, k in zip(items, keys, strict=True) if id(i) in visible]
            items, keys = [p[0] for p in pairs], [p[1] for p in pairs]
        if terms:
            pairs = [(i, k) for i, k in zip(items, keys, strict=True) if matches(i, terms)]
            items, keys = [p[0] for p in pairs], [p[1] for p in pairs]
        kind_code = "i" if sort_key == "ID" else "d"
        low, high = 0, len(items)
        if after is not None:
            key = decode_cursor(after, kind_code)
            if reverse:
                high = min(high, bisect.bisect_left(keys, key))
            else:
                low = max(low, bisect.bisect_right(keys, key))
        if before is not None:
            key = decode_cursor(before, kind_code)
            if reverse:
                low = max(low, bisect.bisect_right(keys, key))
            else:
                high = min(high, bisect.bisect_left(keys, key))
        window = list(range(low, high))
        if reverse:
            window.reverse()
        # Items that match but lie before / after the window, in the requested order.
        behind = high < len(items) if reverse else low > 0
        ahead = low > 0 if reverse else high < len(items)
        has_previous = after is not None and behind
        has_next = before is not None and ahead
        if first is not None:
            has_next = has_next or len(window) > first
            window = window[:first]
        if last is not None:
            has_previous = has_previous or len(window) > last
            window = window[max(0, len(window) - last) :]
        return Page(
            items=[items[i] for i in window],
            cursors=[encode_cursor(keys[i]) for i in window],
            has_next_page=has_next,
            has_previous_page=has_previous,
        )

    # -- webhook subscriptions ----------------------------------------------------------------

    def add_subscription(self, topic: str, uri: str, api_version: str = "2026-04") -> Record:
        """A shop-specific subscription, as webhookSubscriptionCreate makes (`topic`: the enum)."""
        with self.lock:
            number = WEBHOOK_SUBSCRIPTION_ID_BASE + len(self.subscriptions) + 1
            now = self.now()
            record: Record = {
                "__typename": "WebhookSubscription",
                "id": gid("WebhookSubscription", number),
                "legacy_resource_id": number,
                "number": number,
                "topic": topic,
                "uri": uri,
                "callback_url": uri,
                "endpoint": {"__typename": "WebhookHttpEndpoint", "callbackUrl": uri},
                "format": "JSON",
                "api_version": {
                    "handle": api_version,
                    "displayName": api_version,
                    "supported": True,
                },
                "include_fields": [],
                "metafield_namespaces": [],
                "metafields": [],
                "filter": None,
                "name": None,
                "created_at": now,
                "updated_at": now,
            }
            self.subscriptions.append(record)
            return record

    def subscribe(self, topics: Iterable[str], uri: str) -> list[Record]:
        """Pre-populate: one subscription per topic enum (e.g. ORDERS_CREATE) at `uri`."""
        return [self.add_subscription(topic, uri) for topic in topics]

    # -- internals ----------------------------------------------------------------------------

    def _sorted_with_keys(self, kind: str, sort_key: str) -> tuple[list[Record], list[Any]]:
        """Records sorted by (sort key, id), cached until the shop changes."""
        sort_key = sort_key if sort_key in SORT_FIELDS else "ID"
        with self.lock:
            cached = self._sorted.get((kind, sort_key))
            if cached is not None and cached[0] == self._version:
                return cached[1], cached[2]
            source = self._customers if kind == "customer" else self._orders
            by = sort_function(sort_key)
            items = sorted(source.values(), key=by)
            keys = [by(item) for item in items]
            self._sorted[(kind, sort_key)] = (self._version, items, keys)
            return items, keys

    def _take_id(self, kind: str, base: int, given: int | None) -> int:
        if given is not None:
            self._next[kind] = max(self._next[kind], given - base + 1)
            return given
        number = base + self._next[kind]
        self._next[kind] += 1
        return number

    def _line_item(self, item: dict[str, Any]) -> Record:
        number = self._take_id("line_item", LINE_ITEM_ID_BASE, item.get("id"))
        quantity = int(item.get("quantity", 1))
        title = item.get("title") or "Item"
        return {
            **item,
            "__typename": "LineItem",
            "id": number,
            "title": title,
            "name": item.get("name") or title,
            "quantity": quantity,
            "current_quantity": int(item.get("current_quantity", quantity)),
            "sku": item.get("sku"),
            "price": Decimal(str(item.get("price", "0.00"))),
            "variant_id": item.get("variant_id"),
            "product_id": item.get("product_id"),
        }

    def _store_order(self, record: Record) -> None:
        self._orders[record["id"]] = record
        if record["customer_id"] is not None:
            self._orders_by_customer.setdefault(record["customer_id"], set()).add(record["id"])
        for item in record["line_items"]:
            self._line_item_order[item["id"]] = record["id"]

    def _unindex_order(self, record: Record) -> None:
        if record["customer_id"] is not None:
            self._orders_by_customer.get(record["customer_id"], set()).discard(record["id"])

    def _normalise(self, changes: dict[str, Any]) -> dict[str, Any]:
        result = dict(changes)
        for key, value in changes.items():
            if key.endswith("_at") and value is not None:
                result[key] = to_datetime(value)
            elif key in ("total_price", "current_total_price") and value is not None:
                result[key] = Decimal(str(value))
        return result

    def _changed(self) -> None:
        self._version += 1


def sort_function(sort_key: str) -> Callable[[Record], tuple[Any, int]]:
    name = SORT_FIELDS.get(sort_key, "id")
    return lambda record: (record[name], record["id"])


def matches(record: Record, terms: Sequence[SearchTerm]) -> bool:
    """Every term holds (Shopify's implicit AND)."""
    for term in terms:
        value = record.get(term.field)
        if value is None:
            return False
        op = term.op
        if not (
            (op == ">" and value > term.value)
            or (op == ">=" and value >= term.value)
            or (op == "<" and value < term.value)
            or (op == "<=" and value <= term.value)
            or (op == "=" and value == term.value)
        ):
            return False
    return True


FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia")
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson")
TAGS = ["vip", "wholesale", "newsletter", "returning", "b2b"]
FINANCIAL = ("PAID", "PAID", "PAID", "PENDING", "PARTIALLY_REFUNDED", "AUTHORIZED")


SEARCH_FIELDS = {"updated_at": "updated_at", "created_at": "created_at", "id": "id"}
_TERM = re.compile(r"""(?P<field>\w+):(?P<op>>=|<=|>|<|=)?\s*(?P<value>'[^']*'|"[^"]*"|[^\s)]+)""")


def parse_search(query: str | None) -> list[SearchTerm]:
    """Terms of Shopify's search syntax this stand-in understands (times and ids).

    Like Shopify, terms it does not know are ignored rather than rejected.
    """
    terms: list[SearchTerm] = []
    for match in _TERM.finditer(query or ""):
        name = SEARCH_FIELDS.get(match["field"].lower())
        if name is None:
            continue
        raw = match["value"].strip("'\"")
        try:
            value: Any = int(raw) if name == "id" else _search_time(raw)
        except ValueError:
            continue
        terms.append(SearchTerm(name, match["op"] or "=", value))
    return terms


def _search_time(raw: str) -> datetime:
    """A search time: full ISO-8601, or a bare date (midnight UTC)."""
    if len(raw) == 10:
        raw += "T00:00:00Z"
    parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
