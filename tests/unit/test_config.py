"""load_settings(): defaults, parsing of every variable, and problems reported together."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.config import (
    MAX_DEFAULT_WORKERS,
    ConfigError,
    Settings,
    default_workers,
    load_settings,
    usable_cpus,
)


def test_defaults_when_nothing_is_set() -> None:
    settings = load_settings({})
    assert settings == Settings(
        database_url=None,
        shopify_api_secret=None,
        shopify_api_secret_previous=None,
        admin_token=None,
        max_body_bytes=10 * 1024 * 1024,
        max_header_bytes=64 * 1024,
        unverified_body_budget_bytes=50 * 1024 * 1024,
        host="127.0.0.1",
        port=8000,
        workers=default_workers(),
        db_pool_size=10,
        db_connect_timeout=3.0,
        db_acquire_timeout=3.0,
        db_statement_timeout=1.0,
        log_level="INFO",
        data_dir=Path(".data"),
        shopify_admin_base_url="https://{shop}",
        shopify_api_version="2026-10",
        token_encryption_keys=(),
        sync_lease_seconds=600.0,
        sync_overdue_seconds=7200.0,
    )


def test_blank_values_count_as_unset() -> None:
    blank = {
        name: "   "
        for name in (
            "DATABASE_URL",
            "SHOPIFY_API_SECRET",
            "PORT",
            "WEB_CONCURRENCY",
            "DB_STATEMENT_TIMEOUT",
            "LOG_LEVEL",
            "HOST",
            "DATA_DIR",
        )
    }
    assert load_settings(blank) == load_settings({})


def test_every_variable_is_parsed() -> None:
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://user:pw@db.internal:5433/ingest",
            "SHOPIFY_API_SECRET": "current-secret",
            "SHOPIFY_API_SECRET_PREVIOUS": "old-secret",
            "ADMIN_TOKEN": "admin-token",
            "MAX_BODY_BYTES": "2048",
            "HOST": "0.0.0.0",
            "PORT": " 9090 ",
            "WEB_CONCURRENCY": "4",
            "DB_POOL_SIZE": "25",
            "DB_CONNECT_TIMEOUT": "5",
            "DB_ACQUIRE_TIMEOUT": "0.5",
            "DB_STATEMENT_TIMEOUT": "2.5",
            "LOG_LEVEL": "debug",
            "DATA_DIR": "/var/lib/ingest",
        }
    )
    assert settings.database_url == "postgresql://user:pw@db.internal:5433/ingest"
    assert settings.shopify_api_secret == "current-secret"
    assert settings.shopify_api_secret_previous == "old-secret"
    assert settings.admin_token == "admin-token"
    assert settings.max_body_bytes == 2048
    assert settings.host == "0.0.0.0"
    assert settings.port == 9090
    assert settings.workers == 4
    assert settings.db_pool_size == 25
    assert settings.db_connect_timeout == 5.0
    assert settings.db_acquire_timeout == 0.5
    assert settings.db_statement_timeout == 2.5
    assert settings.log_level == "DEBUG"
    assert settings.data_dir == Path("/var/lib/ingest")


@pytest.mark.parametrize("url", ["postgres://h/db", "postgresql://h/db", "postgresql:///db"])
def test_postgres_urls_are_accepted(url: str) -> None:
    assert load_settings({"DATABASE_URL": url}).database_url == url


@pytest.mark.parametrize("port", ["1", "65535"])
def test_port_bounds_are_accepted(port: str) -> None:
    assert load_settings({"PORT": port}).port == int(port)


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "8123")
    assert load_settings().port == 8123


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "abc"),
        ("PORT", "70000"),
        ("PORT", "0"),
        ("PORT", "-1"),
        ("PORT", "80.5"),
        ("WEB_CONCURRENCY", "0"),
        ("WEB_CONCURRENCY", "two"),
        ("MAX_BODY_BYTES", "1.5"),
        ("DB_POOL_SIZE", "-3"),
        ("DB_CONNECT_TIMEOUT", "nan"),
        ("DB_ACQUIRE_TIMEOUT", "0"),
        ("DB_STATEMENT_TIMEOUT", "-1"),
        ("DB_STATEMENT_TIMEOUT", "soon"),
        # An infinite timeout is not a number of seconds: the statement timeout
        # is later turned into whole milliseconds for SET LOCAL.
        ("DB_STATEMENT_TIMEOUT", "inf"),
        ("LOG_LEVEL", "loud"),
        ("DATABASE_URL", "mysql://x"),
        ("DATABASE_URL", "localhost:5432/ingest"),
    ],
)
def test_malformed_value_is_reported_by_name(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({name: value})
    assert name in str(raised.value)


def test_every_problem_is_reported_together() -> None:
    environ = {
        "PORT": "abc",
        "WEB_CONCURRENCY": "0",
        "DB_STATEMENT_TIMEOUT": "-1",
        "LOG_LEVEL": "loud",
        "DATABASE_URL": "mysql://x",
    }
    with pytest.raises(ConfigError) as raised:
        load_settings(environ)
    message = str(raised.value)
    for name in environ:
        assert name in message
    # The offending values are echoed, so the operator sees what was read.
    assert "'abc'" in message
    assert "'-1'" in message
    assert "LOUD" in message.upper()


def test_port_message_names_the_value_and_the_expectation() -> None:
    with pytest.raises(ConfigError, match=r"PORT='70000' is not a TCP port \(1-65535\)"):
        load_settings({"PORT": "70000"})


def test_valid_variables_are_not_reported_among_problems() -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"PORT": "abc", "WEB_CONCURRENCY": "3", "HOST": "0.0.0.0"})
    message = str(raised.value)
    assert "PORT" in message
    assert "WEB_CONCURRENCY" not in message


def test_require_secret_without_secret_is_a_clear_error() -> None:
    settings = load_settings({"SHOPIFY_API_SECRET_PREVIOUS": "old-secret"})
    with pytest.raises(ConfigError, match="SHOPIFY_API_SECRET is not set"):
        settings.require_secret()


def test_require_secret_with_secret_passes() -> None:
    load_settings({"SHOPIFY_API_SECRET": "s"}).require_secret()


def test_shopify_secrets_are_current_then_previous() -> None:
    settings = load_settings(
        {"SHOPIFY_API_SECRET": "current", "SHOPIFY_API_SECRET_PREVIOUS": "previous"}
    )
    assert settings.shopify_secrets == (b"current", b"previous")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"SHOPIFY_API_SECRET": "current"}, (b"current",)),
        ({"SHOPIFY_API_SECRET": "current", "SHOPIFY_API_SECRET_PREVIOUS": " "}, (b"current",)),
        ({"SHOPIFY_API_SECRET_PREVIOUS": "previous"}, (b"previous",)),
        ({}, ()),
    ],
)
def test_shopify_secrets_skip_unset_ones(environ: dict[str, str], expected: tuple[bytes]) -> None:
    assert load_settings(environ).shopify_secrets == expected


AFFINITY = len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [
        ("max 100000\n", AFFINITY),  # no quota
        ("50000 100000\n", 1),  # half a CPU still gets a worker
        ("150000 100000\n", min(AFFINITY, 2)),  # 1.5 CPUs round up
        ("6400000 100000\n", AFFINITY),  # a quota above the cores does not add any
        ("garbage\n", AFFINITY),
    ],
)
def test_usable_cpus_follow_a_containers_cpu_quota(
    tmp_path: Path, cpu_max: str, expected: int
) -> None:
    limit = tmp_path / "cpu.max"
    limit.write_text(cpu_max)
    assert usable_cpus(limit) == expected


def test_usable_cpus_without_a_cgroup_are_the_affinity_mask(tmp_path: Path) -> None:
    assert usable_cpus(tmp_path / "missing") == AFFINITY


def test_the_default_worker_count_is_one_per_usable_cpu_up_to_a_cap() -> None:
    assert default_workers() == min(usable_cpus(), MAX_DEFAULT_WORKERS)
    assert load_settings({"WEB_CONCURRENCY": "3"}).workers == 3
