"""`python -m app serve`: Uvicorn with WEB_CONCURRENCY worker processes on HOST:PORT.

Uvicorn (uvloop, httptools) was chosen by measurement (docs/development.md, The server).
On SIGTERM it stops accepting connections, lets each worker finish the
requests in flight (at most SHUTDOWN_GRACE_SECONDS), runs the application's
shutdown, and exits. A client's address is its connection's; X-Forwarded-For
and X-Forwarded-Proto are believed only from TRUSTED_PROXIES (Uvicorn would
otherwise believe them from 127.0.0.1, and the console's login lockout could be
dodged by sending a new address with each guess).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app.cli.database import database_url
from app.config import Settings
from app.observability.logs import server_logging_config

# Below docker-compose's stop_grace_period (30 s), above every delivery's
# database deadline.
SHUTDOWN_GRACE_SECONDS = 25


def run(settings: Settings, args: argparse.Namespace) -> int:
    settings.require_secret()
    with database_url(settings), _metrics_directory():
        import uvicorn

        from app.http.limits import BoundedHttpToolsProtocol

        _ignore_stop_signals()
        uvicorn.run(
            "app.asgi:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            loop="uvloop",
            ws="none",
            lifespan="on",
            access_log=False,
            log_config=server_logging_config(settings.log_level),
            timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
            # httptools with a limit on the request head (431 above it); see
            # app/http/limits.py: the protocol reads its limit from here.
            http=BoundedHttpToolsProtocol,
            h11_max_incomplete_event_size=settings.max_header_bytes,
            **proxy_options(settings),
        )
        # With several workers Uvicorn's supervisor leaves its own handlers in
        # place, and a child such as `pg_ctl stop` would take a second Ctrl-C
        # with the default action (children inherit only an ignored signal).
        _ignore_stop_signals()
    return 0


def proxy_options(settings: Settings) -> dict[str, Any]:
    """Forwarded headers believed only from TRUSTED_PROXIES (none: never)."""
    return {
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies),
    }


def _ignore_stop_signals() -> None:
    """Lets the cleanup after the server (stopping the embedded PostgreSQL) finish.

    Uvicorn handles SIGINT and SIGTERM while it serves; with one worker, when it
    has shut down it raises the signal again under the handler it found, which
    killed the process before the cleanup ran. A second Ctrl-C (`uv run`
    forwards one on top of the terminal's) interrupted the cleanup the same way.
    """
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, signal.SIG_IGN)


@contextmanager
def _metrics_directory() -> Iterator[None]:
    """A fresh directory where every worker keeps its metrics (see app.observability.metrics)."""
    directory = tempfile.mkdtemp(prefix="shopify-ingest-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)
