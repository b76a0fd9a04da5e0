"""A real PgBouncer in transaction mode, in front of a test PostgreSQL."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (path for path in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.path.exists(path)),
        None,
    )


class PgBouncer:
    """PgBouncer on a free loopback port (by default: transaction mode, a small server pool).

    PgBouncer refuses to run as root; as root it runs as the user that owns the
    PostgreSQL socket directory (or `postgres`).
    """

    def __init__(
        self,
        postgres_url: str,
        *,
        pool_size: int = 4,
        settings: Mapping[str, str] | None = None,
        run_as: str | None = None,
    ) -> None:
        binary = pgbouncer_binary()
        if binary is None:
            raise FileNotFoundError("pgbouncer is not installed (apt-get install pgbouncer)")
        self.binary = binary
        self.target = urlsplit(postgres_url)
        self.settings = dict(settings or self.test_settings(pool_size))
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
        self.run_as = run_as or self._default_user()
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def test_settings(pool_size: int) -> dict[str, str]:
        """Transaction pooling with a small server pool: what the tests need."""
        return {
            "pool_mode": "transaction",
            "default_pool_size": str(pool_size),
            "max_client_conn": "500",
            "server_reset_query": "",
            "ignore_startup_parameters": "extra_float_digits",
        }

    @property
    def pool_size(self) -> int:
        """Server connections per database and user."""
        return int(self.settings["default_pool_size"])

    @property
    def host(self) -> str:
        query = parse_qs(self.target.query)
        return query.get("host", [self.target.hostname or "127.0.0.1"])[0]

    def url(self, database: str | None = None) -> str:
        name = database or self.target.path.lstrip("/") or "postgres"
        return f"postgresql://{self.target.username or 'postgres'}@127.0.0.1:{self.port}/{name}"

    def _default_user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        if self.host.startswith("/"):
            return pwd.getpwuid(os.stat(self.host).st_uid).pw_name
        return "postgres"

    def _write_config(self) -> Path:
        user = self.target.username or "postgres"
        port = self.target.port or 5432
        (self.directory / "userlist.txt").write_text(f'"{user}" ""\n')
        settings = "\n".join(f"{name} = {value}" for name, value in self.settings.items())
        config = self.directory / "pgbouncer.ini"
        config.write_text(
            f"""[databases]
* = host={self.host} port={port} user={user}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.directory / "userlist.txt"}
logfile = {self.directory / "pgbouncer.log"}
pidfile = {self.directory / "pgbouncer.pid"}
{settings}
"""
        )
        if self.run_as:
            record = pwd.getpwnam(self.run_as)
            for path in (self.directory, *self.directory.iterdir()):
                os.chown(path, record.pw_uid, record.pw_gid)
        return config

    def start(self) -> PgBouncer:
        config = self._write_config()
        command = [self.binary, str(config)]
        if self.run_as:
            command[1:1] = ["-u", self.run_as]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        self._wait_until_listening()
        return self

    def _wait_until_listening(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"pgbouncer did not listen on port {self.port}:\n{self.log()}")

    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text() if path.exists() else ""

    def kill(self) -> None:
        """Stop abruptly, dropping every connection (as a crash would)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        """Start again on the same port (after kill or stop)."""
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
