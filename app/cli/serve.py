"""`python -m app serve`: Granian with WEB_CONCURRENCY worker processes on HOST:PORT.

Granian was chosen by measurement (see the README's Benchmark section). On
SIGTERM it stops accepting connections, lets each worker finish the requests
in flight, runs the application's shutdown, and exits.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from app.cli.database import database_url
from app.config import Settings
from app.operations.logs import server_logging_config

# A worker still busy this long after SIGTERM is killed; below docker-compose's
# stop_grace_period (30 s), above every delivery's database deadline.
SHUTDOWN_GRACE_SECONDS = 25


def run(settings: Settings, args: argparse.Namespace) -> int:
    settings.require_secret()
    with database_url(settings), _metrics_directory():
        from granian import Granian
        from granian.constants import Interfaces, Loops

        Granian(
            "app.asgi:create_app",
            factory=True,
            address=settings.host,
            port=settings.port,
            interface=Interfaces.ASGI,
            workers=settings.workers,
            workers_kill_timeout=SHUTDOWN_GRACE_SECONDS,
            loop=Loops.uvloop,
            websockets=False,
            log_access=False,
            log_dictconfig=server_logging_config(),
        ).serve()
    return 0


@contextmanager
def _metrics_directory() -> Iterator[None]:
    """A fresh directory where every worker keeps its metrics (see app.operations.metrics)."""
    directory = tempfile.mkdtemp(prefix="shopify-ingest-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)
