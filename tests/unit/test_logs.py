"""JsonFormatter: one JSON object per record, with the call's fields merged in."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from app.observability.logs import JsonFormatter


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"tests.unit.logs.{uuid.uuid4().hex}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    yield logger, stream
    logger.handlers.clear()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_each_record_is_one_json_object_with_the_basic_keys(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    before = datetime.now(UTC)
    logger.info("delivery %s", "accepted")
    logger.warning("slow")
    first, second = lines(stream)
    assert first["level"] == "info"
    assert first["logger"] == logger.name
    assert first["message"] == "delivery accepted"
    assert set(first) == {"time", "level", "logger", "message"}
    assert second["level"] == "warning"
    assert second["message"] == "slow"
    time = datetime.fromisoformat(first["time"])
    assert time.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= time <= datetime.now(UTC) + timedelta(seconds=1)


def test_fields_extra_is_merged_in(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    ledger_id = uuid.uuid4()
    fields = {
        "topic": "orders/create",
        "shop_id": "test-shop.myshopify.com",
        "duration_ms": 12.5,
        "ledger_id": ledger_id,
        "amount": Decimal("404.95"),
    }
    logger.info("webhook", extra={"fields": fields})
    (entry,) = lines(stream)
    assert entry["message"] == "webhook"
    assert entry["topic"] == "orders/create"
    assert entry["shop_id"] == "test-shop.myshopify.com"
    assert entry["duration_ms"] == 12.5
    # Values JSON cannot hold are written as text rather than failing.
    assert entry["ledger_id"] == str(ledger_id)
    assert entry["amount"] == "404.95"
    assert "fields" not in entry


def test_exception_is_included_on_the_same_line(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        logger.exception("failed", extra={"fields": {"topic": "orders/paid"}})
    assert stream.getvalue().count("\n") == 1
    (entry,) = lines(stream)
    assert entry["level"] == "error"
    assert entry["topic"] == "orders/paid"
    assert "RuntimeError: boom" in entry["exception"]
    assert "Traceback" in entry["exception"]


def test_format_of_a_plain_record() -> None:
    record = logging.LogRecord("app.x", logging.ERROR, __file__, 1, "n=%d", (3,), None)
    record.created = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC).timestamp()
    entry = json.loads(JsonFormatter().format(record))
    assert entry == {
        "time": "2026-01-02T03:04:05.678+00:00",
        "level": "error",
        "logger": "app.x",
        "message": "n=3",
    }
