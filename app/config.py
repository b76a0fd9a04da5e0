"""Configuration, read once from environment variables.

Every variable is documented once, in docs/configuration.md
(tests/unit/test_config_docs.py keeps the two equal). Problems are collected
and reported together, so an operator fixes them in one go.
"""

from __future__ import annotations

import base64
import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_ADMIN_BASE_URL = "https://{shop}"
# The current stable version of Shopify's Admin API (quarterly: YYYY-01/04/07/10).
DEFAULT_API_VERSION = "2026-10"
# Shops the scheduler syncs at once (bench/README.md, A fleet of shops: why this many).
DEFAULT_SYNC_CONCURRENCY = 16
# read_all_orders: without it Shopify shows only the last 60 days of orders.
DEFAULT_SCOPES = ("read_customers", "read_orders", "read_all_orders")
# One worker per usable core: a worker's Python runs on one core, and workers
# beyond the cores gained nothing when measured (bench/README.md, Workers).
# Capped so that the workers' pools stay within what a PgBouncer comfortably holds.
MAX_DEFAULT_WORKERS = 8
# Where the relay publishes customer events: subjects <prefix>.<kind> in this stream.
DEFAULT_EVENTS_STREAM = "SHOPIFY_EVENTS"
DEFAULT_EVENTS_SUBJECT = "shopify.events"
CGROUP_CPU_LIMIT = Path("/sys/fs/cgroup/cpu.max")


class ConfigError(Exception):
    """The environment does not describe a runnable service."""


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    shopify_api_secret: str | None
    shopify_api_secret_previous: str | None
    admin_token: str | None
    max_body_bytes: int
    max_header_bytes: int
    unverified_body_budget_bytes: int
    host: str
    port: int
    workers: int
    db_pool_size: int
    db_connect_timeout: float
    db_acquire_timeout: float
    db_statement_timeout: float
    log_level: str
    data_dir: Path
    shopify_admin_base_url: str
    shopify_api_version: str
    token_encryption_keys: tuple[str, ...]
    sync_lease_seconds: float
    sync_overdue_seconds: float
    public_url: str | None = None
    # Bounds of one sync run (app/sync/runner.py) and of reading a bulk result
    # (app/shopify/bulk.py), whatever Shopify or the network does.
    sync_run_deadline_seconds: float = 43200.0
    sync_bulk_download_seconds: float = 21600.0
    sync_bulk_max_line_bytes: int = 1024 * 1024
    # The scheduler (app/sync/scheduler.py): shops synced at once.
    sync_concurrency: int = DEFAULT_SYNC_CONCURRENCY
    # Shop access (app/access): the app's client id, the scopes it asks for, how
    # long before expiry a token is refreshed, whether other components may take
    # tokens from the service, where the browser goes after an install.
    shopify_api_key: str | None = None
    shopify_scopes: tuple[str, ...] = DEFAULT_SCOPES
    token_refresh_margin: float = 300.0
    token_broker_enabled: bool = False
    post_install_redirect: str | None = None
    webhook_topics: tuple[str, ...] = ()
    silence_after_seconds: float = 21600.0
    admin_statement_timeout: float = 10.0
    # The operator console (Piccolo Admin at /admin/): off unless enabled.
    console_enabled: bool = False
    console_pool_size: int = 2
    # Proxies (addresses or networks) whose X-Forwarded-For and X-Forwarded-Proto
    # are believed; from anyone else they are ignored.
    trusted_proxies: tuple[str, ...] = ()
    # Customer scores and events (app/scores, app/outbox): how long a first
    # counted order keeps a customer `new`, how long events are kept, and the
    # NATS JetStream the relay publishes to (unset: no relay).
    new_customer_days: int = 30
    event_retention_days: int = 30
    events_nats_url: str | None = None
    events_nats_stream: str = DEFAULT_EVENTS_STREAM
    events_nats_subject: str = DEFAULT_EVENTS_SUBJECT

    @property
    def shopify_secrets(self) -> tuple[bytes, ...]:
        """The secrets a webhook signature may be made with, newest first."""
        secrets = (self.shopify_api_secret, self.shopify_api_secret_previous)
        return tuple(secret.encode() for secret in secrets if secret)

    def require_secret(self) -> None:
        if not self.shopify_api_secret:
            raise ConfigError(
                "SHOPIFY_API_SECRET is not set: the service cannot verify Shopify's "
                "signatures without it. Set it to your app's client secret."
            )


class _Reader:
    """Reads typed values from an environment mapping, collecting every problem."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def text(self, name: str) -> str | None:
        value = self.environ.get(name, "").strip()
        return value or None

    def parsed(
        self,
        name: str,
        default: T,
        parse: Callable[[str], T],
        expected: str,
        *,
        secret: bool = False,
    ) -> T:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError:
            shown = name if secret else f"{name}={raw!r}"  # a secret is never echoed
            self.problems.append(f"{shown} is not {expected}")
            return default

    def positive_int(self, name: str, default: int) -> int:
        return self.parsed(name, default, _positive(int), "a positive whole number")

    def positive_seconds(self, name: str, default: float) -> float:
        return self.parsed(name, default, _seconds, "a number of seconds above 0 and below 1 day")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = (self.text(name) or default).upper()
        if value not in choices:
            self.problems.append(f"{name}={value!r} is not one of {', '.join(choices)}")
            return default
        return value


def _positive(parse: Callable[[str], T]) -> Callable[[str], T]:
    def parse_positive(raw: str) -> T:
        value = parse(raw)
        if not value > 0:  # type: ignore[operator]
            raise ValueError(raw)
        return value

    return parse_positive


def _seconds(raw: str) -> float:
    # Finite and below a day: the value becomes PostgreSQL's statement_timeout in ms.
    seconds = float(raw)
    if not 0 < seconds < 86400:
        raise ValueError(raw)
    return seconds


def _check_database_url(url: str | None, problems: list[str]) -> None:
    if url is not None and urlsplit(url).scheme not in ("postgres", "postgresql"):
        problems.append("DATABASE_URL must be a postgresql:// URL")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from the environment, or raise ConfigError naming every problem."""
    read = _Reader(os.environ if environ is None else environ)
    settings = Settings(
        database_url=read.text("DATABASE_URL"),
        shopify_api_secret=read.text("SHOPIFY_API_SECRET"),
        shopify_api_secret_previous=read.text("SHOPIFY_API_SECRET_PREVIOUS"),
        admin_token=read.text("ADMIN_TOKEN"),
        max_body_bytes=read.positive_int("MAX_BODY_BYTES", 10 * 1024 * 1024),
        # Shopify's headers take about 1 KB; a larger head is refused (431) as it arrives.
        max_header_bytes=read.positive_int("MAX_HEADER_BYTES", 64 * 1024),
        # Bodies one worker holds before their signature is checked (beyond: 503).
        unverified_body_budget_bytes=read.positive_int(
            "UNVERIFIED_BODY_BUDGET_BYTES", 50 * 1024 * 1024
        ),
        host=read.text("HOST") or "127.0.0.1",
        port=read.parsed("PORT", 8000, _port, "a TCP port (1-65535)"),
        workers=read.positive_int("WEB_CONCURRENCY", default_workers()),
        db_pool_size=read.positive_int("DB_POOL_SIZE", 10),
        db_connect_timeout=read.positive_seconds("DB_CONNECT_TIMEOUT", 3.0),
        # A delivery gets at most acquire + statement + 0.5 s (app/db/database.py):
        # 4.5 s by default, inside Shopify's 5 s.
        db_acquire_timeout=read.positive_seconds("DB_ACQUIRE_TIMEOUT", 3.0),
        db_statement_timeout=read.positive_seconds("DB_STATEMENT_TIMEOUT", 1.0),
        admin_statement_timeout=read.positive_seconds("ADMIN_STATEMENT_TIMEOUT", 10.0),
        log_level=read.choice("LOG_LEVEL", "INFO", LOG_LEVELS),
        data_dir=Path(read.text("DATA_DIR") or ".data"),
        shopify_admin_base_url=read.parsed(
            "SHOPIFY_ADMIN_BASE_URL",
            DEFAULT_ADMIN_BASE_URL,
            _admin_base_url,
            "an http(s) URL template containing {shop}",
        ),
        shopify_api_version=read.parsed(
            "SHOPIFY_API_VERSION",
            DEFAULT_API_VERSION,
            _api_version,
            "an API version like 2026-10",
        ),
        token_encryption_keys=read.parsed(
            "TOKEN_ENCRYPTION_KEY",
            (),
            _fernet_keys,
            "one or more comma-separated Fernet keys (32 bytes, URL-safe base64)",
            secret=True,
        ),
        sync_lease_seconds=read.positive_seconds("SYNC_LEASE_SECONDS", 600.0),
        sync_overdue_seconds=read.positive_seconds("SYNC_OVERDUE_SECONDS", 7200.0),
        sync_run_deadline_seconds=read.positive_seconds("SYNC_RUN_DEADLINE_SECONDS", 43200.0),
        sync_bulk_download_seconds=read.positive_seconds("SYNC_BULK_DOWNLOAD_SECONDS", 21600.0),
        sync_bulk_max_line_bytes=read.positive_int("SYNC_BULK_MAX_LINE_BYTES", 1024 * 1024),
        sync_concurrency=read.positive_int("SYNC_CONCURRENCY", DEFAULT_SYNC_CONCURRENCY),
        public_url=read.parsed(
            "PUBLIC_URL",
            None,
            _public_url,
            "an https:// URL (scheme and host, optional path; http:// only on loopback)",
        ),
        shopify_api_key=read.text("SHOPIFY_API_KEY"),
        shopify_scopes=read.parsed(
            "SHOPIFY_SCOPES",
            DEFAULT_SCOPES,
            _scopes,
            "a comma-separated list of access scopes like read_customers,read_orders",
        ),
        token_refresh_margin=read.parsed(
            "TOKEN_REFRESH_MARGIN",
            300.0,
            _refresh_margin,
            "a number of seconds from 0 to 3000 (tokens live 3600)",
        ),
        token_broker_enabled=read.parsed("TOKEN_BROKER_ENABLED", False, _boolean, "true or false"),
        post_install_redirect=read.parsed(
            "POST_INSTALL_REDIRECT",
            None,
            _redirect_url,
            "an http(s) URL (it may contain {shop})",
        ),
        webhook_topics=read.parsed(
            "WEBHOOK_TOPICS",
            (),
            _topics,
            "a comma-separated list of webhook topics like orders/create,customers/update",
        ),
        silence_after_seconds=read.parsed(
            "SILENCE_AFTER",
            21600.0,
            _long_seconds,
            "a number of seconds above 0 and at most 30 days",
        ),
        console_enabled=read.parsed("CONSOLE_ENABLED", False, _boolean, "true or false"),
        # The console's own connections per worker, apart from the deliveries' pool.
        console_pool_size=read.positive_int("CONSOLE_POOL_SIZE", 2),
        trusted_proxies=read.parsed(
            "TRUSTED_PROXIES",
            (),
            _networks,
            "a comma-separated list of IP addresses or networks like 10.0.0.0/8",
        ),
        new_customer_days=read.parsed(
            "NEW_CUSTOMER_DAYS", 30, _days, "a whole number of days from 1 to 3650"
        ),
        event_retention_days=read.parsed(
            "EVENT_RETENTION_DAYS", 30, _days, "a whole number of days from 1 to 3650"
        ),
        events_nats_url=read.parsed(
            "EVENTS_NATS_URL", None, _nats_url, "a nats:// URL (or tls://), e.g. nats://nats:4222"
        ),
        events_nats_stream=read.parsed(
            "EVENTS_NATS_STREAM",
            DEFAULT_EVENTS_STREAM,
            _stream_name,
            "a JetStream stream name (letters, digits, - and _)",
        ),
        events_nats_subject=read.parsed(
            "EVENTS_NATS_SUBJECT",
            DEFAULT_EVENTS_SUBJECT,
            _subject_prefix,
            "a subject prefix of dot-separated tokens like shopify.events",
        ),
    )
    _check_database_url(settings.database_url, read.problems)
    if settings.unverified_body_budget_bytes < settings.max_body_bytes:
        read.problems.append(
            "UNVERIFIED_BODY_BUDGET_BYTES must be at least MAX_BODY_BYTES"
            " (else the largest body allowed could never be received)"
        )
    if read.problems:
        raise ConfigError("Invalid configuration:\n  " + "\n  ".join(read.problems))
    return settings


def default_workers() -> int:
    """One worker per CPU this process may use, at most MAX_DEFAULT_WORKERS."""
    return min(usable_cpus(), MAX_DEFAULT_WORKERS)


def usable_cpus(cgroup_limit: Path = CGROUP_CPU_LIMIT) -> int:
    """The CPUs in this process's affinity mask, fewer under a container's CPU quota.

    `docker run --cpus 2` (or a Kubernetes CPU limit) leaves every host core in
    the affinity mask and sets a cgroup v2 quota ("200000 100000") instead.
    """
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = cgroup_limit.read_text().split()
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 CPU controller here: the affinity mask is the limit
    return cpus


def _port(raw: str) -> int:
    port = int(raw)
    if not 0 < port < 65536:
        raise ValueError(raw)
    return port


def _admin_base_url(raw: str) -> str:
    parts = urlsplit(raw.replace("{shop}", "shop.example"))
    if "{shop}" not in raw or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(raw)
    return raw.rstrip("/")


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _public_url(raw: str) -> str | None:
    parts = urlsplit(raw)
    # Plain http only on this machine: the stand-in Shopify and local development.
    secure = parts.scheme == "https" or (
        parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
    )
    if not secure or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(raw)
    return raw.rstrip("/")


def _redirect_url(raw: str) -> str:
    parts = urlsplit(raw.replace("{shop}", "shop.example"))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(raw)
    return raw


_SCOPE = re.compile(r"[a-z_]+")


def _scopes(raw: str) -> tuple[str, ...]:
    scopes = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if not scopes or not all(_SCOPE.fullmatch(scope) for scope in scopes):
        raise ValueError(raw)
    return scopes


def _refresh_margin(raw: str) -> float:
    seconds = float(raw)
    if not 0 <= seconds <= 3000:
        raise ValueError(raw)
    return seconds


_TOPIC = re.compile(r"[a-z0-9_]+([/.][a-z0-9_]+)+")


def _topics(raw: str) -> tuple[str, ...]:
    topics = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if not topics or not all(_TOPIC.fullmatch(topic) for topic in topics):
        raise ValueError(raw)
    return topics


def _boolean(raw: str) -> bool:
    value = raw.lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ValueError(raw)


def _long_seconds(raw: str) -> float:
    seconds = float(raw)
    if not 0 < seconds <= 30 * 86400:
        raise ValueError(raw)
    return seconds


def _networks(raw: str) -> tuple[str, ...]:
    networks = tuple(part.strip() for part in raw.split(",") if part.strip())
    for network in networks:
        ipaddress.ip_network(network, strict=False)  # ValueError when it is not one
    return networks


def _api_version(raw: str) -> str:
    if raw != "unstable" and not re.fullmatch(r"20\d\d-(01|04|07|10)", raw):
        raise ValueError(raw)
    return raw


def _fernet_keys(raw: str) -> tuple[str, ...]:
    keys = tuple(key.strip() for key in raw.split(",") if key.strip())
    for key in keys:
        try:
            decoded = base64.urlsafe_b64decode(key.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise ValueError("not base64") from None
        if len(decoded) != 32:
            raise ValueError("not 32 bytes")
    return keys


def _days(raw: str) -> int:
    days = int(raw)
    if not 1 <= days <= 3650:
        raise ValueError(raw)
    return days


def _nats_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("nats", "tls") or not parts.hostname:
        raise ValueError(raw)
    return raw


_STREAM = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SUBJECT_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


def _stream_name(raw: str) -> str:
    if not _STREAM.fullmatch(raw):
        raise ValueError(raw)
    return raw


def _subject_prefix(raw: str) -> str:
    if not all(_SUBJECT_TOKEN.fullmatch(token) for token in raw.split(".")):
        raise ValueError(raw)
    return raw
