"""GroupItem and the fields ingest_deliveries reads: the same names, of compatible types.

A key the function does not read, or one it reads that GroupItem has not,
would silently be NULL there.
"""

from __future__ import annotations

import re

import msgspec.inspect as mi

from app.db.function_files import live_functions
from app.webhooks.grouping import GroupItem

SOURCE = live_functions()["ingest_deliveries"]

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


def test_group_item_has_the_columns_of_jsonb_to_record_with_their_types() -> None:
    found = re.search(r"jsonb_to_record\(e\.value\) AS t\(([^)]*)\)", SOURCE)
    assert found is not None, "ingest_deliveries.sql: no jsonb_to_record(e.value) AS t(...)"
    columns = dict(column.split() for column in found.group(1).split(","))

    info = mi.type_info(GroupItem)
    assert isinstance(info, mi.StructType)
    fields = {field.encode_name: sql_type(field.type) for field in info.fields}

    assert fields == columns


def test_the_keys_read_for_the_locks_are_group_item_fields() -> None:
    keys = set(re.findall(r"e\.value ->> '(\w+)'", SOURCE))
    assert keys == {"shop", "order_shopify_id", "customer_shopify_id"}
    assert keys <= set(GroupItem.__struct_fields__)
