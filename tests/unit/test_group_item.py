"""GroupItem and the fields the delivery functions read: the same names, of compatible types.

ingest_deliveries reads the group's items through ingest_record_deliveries
(the ledger's fields), ingest_changes (the order's and customer's) and itself
(`kind`, `scrubbed`, the lock keys). A key they do not read, or one they read
that GroupItem has not, would silently be NULL there.
"""

from __future__ import annotations

import re

import msgspec.inspect as mi

from app.db.enums import SyncResource
from app.db.function_files import live_functions
from app.sync.apply import changes
from app.webhooks.grouping import GroupItem

FUNCTIONS = live_functions()
SOURCE = FUNCTIONS["ingest_deliveries"]
# What only the sync gives ingest_changes (line items inline, marketing consent).
SYNC_ONLY = {
    "line_items",
    *(
        f"customer_{channel}_marketing_{what}"
        for channel in ("email", "sms")
        for what in ("state", "opt_in_level", "updated_at")
    ),
}

# The PostgreSQL type a JSON value of each msgspec type converts to.
SQL_TYPES: dict[type[mi.Type], str] = {
    mi.StrType: "text",
    mi.EnumType: "text",
    mi.UUIDType: "uuid",
    mi.DateTimeType: "timestamptz",
    mi.BoolType: "boolean",
    mi.DecimalType: "numeric",
    mi.RawType: "jsonb",
}


def sql_type(field_type: mi.Type) -> str:
    if isinstance(field_type, mi.UnionType):
        [field_type] = [t for t in field_type.types if not isinstance(t, mi.NoneType)]
    if isinstance(field_type, mi.ListType):
        return f"{sql_type(field_type.item_type)}[]"
    return SQL_TYPES[type(field_type)]


def columns(function: str) -> dict[str, str]:
    found = re.search(r"jsonb_to_record\(e\.value\) AS t\(([^)]*)\)", FUNCTIONS[function])
    assert found is not None, f"{function}.sql: no jsonb_to_record(e.value) AS t(...)"
    return dict(column.split() for column in found.group(1).split(","))


def test_group_item_has_the_columns_of_jsonb_to_record_with_their_types() -> None:
    ledger = columns("ingest_record_deliveries")
    changes = {k: v for k, v in columns("ingest_changes").items() if k not in SYNC_ONLY}
    assert all(changes[name] == ledger[name] for name in ledger.keys() & changes.keys())
    read = {**ledger, **changes, "scrubbed": "boolean"}

    info = mi.type_info(GroupItem)
    assert isinstance(info, mi.StructType)
    fields = {field.encode_name: sql_type(field.type) for field in info.fields}

    assert fields == read


def test_the_keys_ingest_deliveries_reads_itself_are_group_item_fields() -> None:
    keys = set(re.findall(r"e\.value (?:->>|->|\?) '(\w+)'", SOURCE))
    assert keys == {
        "kind",
        "shop",
        "order_shopify_id",
        "customer_shopify_id",
        "scrubbed",
        "ledger_id",
    }
    assert keys <= set(GroupItem.__struct_fields__)


def test_a_sync_batch_gives_only_fields_that_ingest_changes_reads() -> None:
    """app/sync/apply.py maps records onto changes: a misspelt key would be NULL."""
    read = columns("ingest_changes").keys()
    customer = {"shopify_id": "1", "tags": [], "email": "a@example.com"}
    order = {"shopify_id": "2", "customer_shopify_id": "1", "line_items": []}
    for resource, record in ((SyncResource.customers, customer), (SyncResource.orders, order)):
        [change] = changes("shop.myshopify.com", resource, [record])
        assert change.keys() <= read, change.keys() - read
        assert sum(value is not None for value in change.values()) == len(record) + 2 + (
            resource is SyncResource.customers
        )
