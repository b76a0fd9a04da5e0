"""Calls to SQL functions with named arguments, and which errors mean "unavailable"."""

from __future__ import annotations

import asyncpg
import pytest

from app.db.database import is_unavailable
from app.db.sql import SqlFunction

SHOP = "test-shop.myshopify.com"
OTHER_SHOP = "other-shop.myshopify.com"

# --- SqlFunction ------------------------------------------------------------


def test_sql_function_names_every_argument_in_order() -> None:
    function = SqlFunction("ingest_x", ("shop", "webhook_id", "payload"))
    assert function.sql == (
        "SELECT * FROM ingest_x(p_shop => $1, p_webhook_id => $2, p_payload => $3)"
    )


def test_sql_function_selects_the_given_columns() -> None:
    function = SqlFunction("ingest_record", ("a",), columns="ledger_id")
    assert function.sql == "SELECT ledger_id FROM ingest_record(p_a => $1)"


def test_sql_function_arguments_come_by_name_and_extra_values_are_ignored() -> None:
    function = SqlFunction("f", ("b", "a"))
    assert function.args({"a": 1, "b": 2, "unused": 3}) == [2, 1]


def test_sql_function_missing_argument_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="b"):
        SqlFunction("f", ("a", "b")).args({"a": 1})


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
