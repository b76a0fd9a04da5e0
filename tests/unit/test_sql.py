"""Named SQL parameters, advisory lock SQL and keys, and which errors mean "unavailable"."""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

import asyncpg
import pytest

from app.db.database import Locks, is_unavailable, uuid_list
from app.db.sql import Statement
from app.webhooks.handlers.base import (
    customer_lock,
    delivery_locks,
    lock_key,
    order_lock,
    shop_lock,
)

SHOP = "test-shop.myshopify.com"
OTHER_SHOP = "other-shop.myshopify.com"

# --- Statement --------------------------------------------------------------


def test_names_are_numbered_in_order_of_first_appearance() -> None:
    statement = Statement("SELECT :zeta, :alpha, :mid_1 FROM t")
    assert statement.text == "SELECT $1, $2, $3 FROM t"
    assert statement.names == ["zeta", "alpha", "mid_1"]


def test_repeated_name_reuses_its_number() -> None:
    statement = Statement("UPDATE t SET a = :a, b = :b WHERE a <> :a OR b = :b AND c = :c")
    assert statement.text == "UPDATE t SET a = $1, b = $2 WHERE a <> $1 OR b = $2 AND c = $3"
    assert statement.names == ["a", "b", "c"]


def test_casts_are_left_alone() -> None:
    statement = Statement("SELECT :ids::uuid[], x::text, '{}'::jsonb, :n::int, y :: int")
    assert statement.text == "SELECT $1::uuid[], x::text, '{}'::jsonb, $2::int, y :: int"
    assert statement.names == ["ids", "n"]


def test_longer_name_is_not_confused_with_its_prefix() -> None:
    statement = Statement("SELECT :shop, :shop_id, :shop")
    assert statement.text == "SELECT $1, $2, $1"
    assert statement.names == ["shop", "shop_id"]


def test_statement_without_names() -> None:
    statement = Statement("SELECT 1")
    assert statement.text == "SELECT 1"
    assert statement.args({"unused": 1}) == []


def test_args_are_positional_in_placeholder_order() -> None:
    statement = Statement("SELECT :b, :a, :b::text")
    assert statement.args({"a": 1, "b": "two", "unused": 3}) == ["two", 1]


def test_args_missing_a_name_is_a_key_error() -> None:
    statement = Statement("SELECT :a, :b")
    with pytest.raises(KeyError, match="b"):
        statement.args({"a": 1})


# --- Locks.sql and uuid_list --------------------------------------------------


def test_locks_sql_takes_shared_then_exclusive_in_given_order() -> None:
    sql = Locks(shared=[7, -3], exclusive=[30, 10, 20]).sql()
    assert sql == (
        "SELECT pg_advisory_xact_lock_shared(7), pg_advisory_xact_lock_shared(-3),"
        " pg_advisory_xact_lock(30), pg_advisory_xact_lock(10), pg_advisory_xact_lock(20);"
    )


def test_locks_sql_removes_duplicate_exclusive_keys() -> None:
    sql = Locks(shared=[1], exclusive=[5, 4, 5, 4, 6]).sql()
    assert sql == (
        "SELECT pg_advisory_xact_lock_shared(1),"
        " pg_advisory_xact_lock(5), pg_advisory_xact_lock(4), pg_advisory_xact_lock(6);"
    )


def test_no_locks_is_no_sql() -> None:
    assert Locks().sql() == ""


def test_only_exclusive_locks() -> None:
    assert Locks(exclusive=[2**63 - 1]).sql() == (
        "SELECT pg_advisory_xact_lock(9223372036854775807);"
    )


@pytest.mark.parametrize(
    "bad", ["1", "1); DROP TABLE orders; --", 1.0, None, uuid.uuid4(), b"1"], ids=repr
)
@pytest.mark.parametrize("where", ["shared", "exclusive"])
def test_lock_key_that_is_not_an_int_is_a_type_error(bad: Any, where: str) -> None:
    with pytest.raises(TypeError):
        Locks(**{where: [12345, bad]}).sql()


def test_uuid_list() -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    assert uuid_list([first, second]) == f"'{first}'::uuid, '{second}'::uuid"
    assert uuid_list([]) == ""


@pytest.mark.parametrize("bad", ["not-a-uuid", str(uuid.uuid4()), 1, None], ids=repr)
def test_uuid_list_rejects_what_is_not_a_uuid(bad: Any) -> None:
    with pytest.raises(TypeError):
        uuid_list([uuid.uuid4(), bad])


# --- lock keys --------------------------------------------------------------


def test_lock_keys_are_deterministic() -> None:
    assert lock_key(SHOP, "order", 42) == lock_key(SHOP, "order", 42)
    assert order_lock(SHOP, 42) == lock_key(SHOP, "order", 42)
    assert customer_lock(SHOP, 42) == lock_key(SHOP, "customer", 42)
    assert shop_lock(SHOP) == lock_key(SHOP, "shop")
    # Ids as int (payloads) and as text (stored rows) lock the same row.
    assert order_lock(SHOP, 820982911946154508) == order_lock(SHOP, "820982911946154508")
    # Stable across processes and deploys: derived with blake2b, not Python's salted hash().
    digest = hashlib.blake2b(b"test-shop.myshopify.com/order/1", digest_size=8).digest()
    assert lock_key(SHOP, "order", 1) == int.from_bytes(digest, "big", signed=True)


def test_lock_keys_differ_across_shops_kinds_and_ids() -> None:
    keys = {
        order_lock(SHOP, 1),
        order_lock(OTHER_SHOP, 1),
        customer_lock(SHOP, 1),
        customer_lock(OTHER_SHOP, 1),
        order_lock(SHOP, 2),
        shop_lock(SHOP),
        shop_lock(OTHER_SHOP),
    }
    assert len(keys) == 7


@pytest.mark.parametrize("shopify_id", [0, 1, 2**63 - 1, 820982911946154508, "x", ""])
@pytest.mark.parametrize("kind", ["shop", "order", "customer"])
def test_lock_key_is_a_signed_64_bit_int(kind: str, shopify_id: object) -> None:
    key = lock_key(SHOP, kind, shopify_id)
    assert type(key) is int
    assert -(2**63) <= key < 2**63


def test_lock_keys_use_the_whole_signed_range() -> None:
    keys = [order_lock(SHOP, n) for n in range(200)]
    assert any(key < 0 for key in keys)
    assert any(key > 0 for key in keys)
    assert len(set(keys)) == 200


def test_delivery_locks_share_the_shop_then_orders_then_customers_each_sorted() -> None:
    orders, customers = [30, 10, 20, 40], [3, 1, 2]
    locks = delivery_locks(SHOP, orders=orders, customers=customers)
    assert list(locks.shared) == [shop_lock(SHOP)]
    order_keys = sorted(order_lock(SHOP, order) for order in orders)
    customer_keys = sorted(customer_lock(SHOP, customer) for customer in customers)
    assert list(locks.exclusive) == order_keys + customer_keys


def test_delivery_locks_are_independent_of_input_order() -> None:
    first = delivery_locks(SHOP, orders=[3, 1, 2], customers=[9, 8])
    second = delivery_locks(SHOP, orders=(i for i in [2, 3, 1]), customers=[8, 9])
    assert list(first.exclusive) == list(second.exclusive)
    assert first.sql() == second.sql()


def test_delivery_locks_take_each_key_once() -> None:
    sql = delivery_locks(SHOP, orders=[5, 5, 6], customers=[7, 7]).sql()
    keys = [int(key) for key in re.findall(r"pg_advisory_xact_lock\((-?\d+)\)", sql)]
    expected = {order_lock(SHOP, 5), order_lock(SHOP, 6), customer_lock(SHOP, 7)}
    assert sorted(keys) == sorted(expected)
    assert len(keys) == 3


def test_delivery_locks_without_rows_share_only_the_shop() -> None:
    locks = delivery_locks(SHOP)
    assert list(locks.shared) == [shop_lock(SHOP)]
    assert list(locks.exclusive) == []
    assert locks.sql() == f"SELECT pg_advisory_xact_lock_shared({shop_lock(SHOP)});"


# --- is_unavailable ---------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        OSError("connection refused"),
        ConnectionRefusedError(),
        ConnectionResetError(),
        TimeoutError(),
        asyncpg.InterfaceError("connection is closed"),
        asyncpg.exceptions.QueryCanceledError("x"),  # 57014, statement timeout
        asyncpg.exceptions.ConnectionFailureError("x"),  # 08006
        asyncpg.exceptions.LockNotAvailableError("x"),  # 55P03, lock timeout
        asyncpg.exceptions.AdminShutdownError("x"),  # 57P01
        asyncpg.exceptions.TooManyConnectionsError("x"),  # 53300
    ],
    ids=lambda error: type(error).__name__,
)
def test_unavailable_errors(error: BaseException) -> None:
    assert is_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.UniqueViolationError("x"),  # 23505
        asyncpg.exceptions.DeadlockDetectedError("x"),  # 40P01: retried, not unavailable
        asyncpg.exceptions.NumericValueOutOfRangeError("x"),  # 22003
        asyncpg.exceptions.UndefinedTableError("x"),  # 42P01
        ValueError("x"),
        KeyError("x"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_other_errors_are_not_unavailable(error: BaseException) -> None:
    assert not is_unavailable(error)


def test_sqlstates_of_the_constructed_errors() -> None:
    # Guards the tests above: they rely on these classes carrying these codes.
    assert asyncpg.exceptions.QueryCanceledError("x").sqlstate == "57014"
    assert asyncpg.exceptions.ConnectionFailureError("x").sqlstate == "08006"
    assert asyncpg.exceptions.LockNotAvailableError("x").sqlstate == "55P03"
    assert asyncpg.exceptions.UniqueViolationError("x").sqlstate == "23505"
