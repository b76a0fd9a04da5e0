"""The deployment stack of docker-compose.yml, without Docker.

PostgreSQL (embedded, on a Unix socket), PgBouncer in front of it with the
compose file's pool settings, the migrate command run straight against
PostgreSQL, then the service started with the image's command and
environment on a free loopback port, in its own process group.

The module-level constants are what the Dockerfile and docker-compose.yml
must agree with; tests/e2e/test_deployment_files.py compares them.

Plain Python, no pytest: a benchmark can use it too.

    with Stack(workers=2) as stack:
        httpx.get(stack.base_url + "/health/ready")
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Final

from app.db.embedded import EmbeddedServer
from app.devtools import signing
from app.devtools.pgbouncer import PgBouncer, free_port

ROOT = Path(__file__).resolve().parents[2]

# --- What the image and the compose file must agree with --------------------

# The image's CMD, and the compose `migrate` service's command.
SERVICE_COMMAND: Final = ("python", "-m", "app", "serve")
MIGRATE_COMMAND: Final = ("python", "-m", "app", "migrate")

# What the image holds besides the virtualenv (WORKDIR is the service's cwd).
IMAGE_SOURCE: Final = ("app", "migrations", "piccolo_conf.py")
# The image's compileall step: its processes start from bytecode (PYTHONDONTWRITEBYTECODE
# keeps them from writing any).
IMAGE_COMPILE: Final = ("python", "-m", "compileall", "-q", *IMAGE_SOURCE)
# Files the builder stage reads to build the virtualenv.
IMAGE_BUILD_INPUTS: Final = ("pyproject.toml", "uv.lock")

# The image's ENV. The stack overrides HOST and PORT (loopback, free port).
IMAGE_ENV: Final[Mapping[str, str]] = MappingProxyType(
    {
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "HOST": "0.0.0.0",  # inside a container: every interface
        "PORT": "8000",
    }
)

# The compose `app` service's defaults for the settings .env may leave out
# (blank: the service's own default, for WEB_CONCURRENCY one worker per CPU).
SERVICE_DEFAULTS: Final[Mapping[str, str]] = MappingProxyType(
    {"WEB_CONCURRENCY": "", "DB_POOL_SIZE": "10", "LOG_LEVEL": "INFO"}
)

# pgbouncer.ini settings, the same in docker-compose.yml (as the image's
# environment variables: the upper-cased names). WEB_CONCURRENCY x DB_POOL_SIZE
# client connections per app container stay far below max_client_conn;
# default_pool_size server connections stay below PostgreSQL's 100.
PGBOUNCER_SETTINGS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "pool_mode": "transaction",
        "default_pool_size": "20",
        "max_client_conn": "200",
        "ignore_startup_parameters": "extra_float_digits",
        # After PostgreSQL was unreachable, PgBouncer turns clients away for
        # this many seconds (default 15) even once it is back.
        "server_login_retry": "1",
    }
)

# How long `docker compose stop` waits before SIGKILL (stop_grace_period).
STOP_GRACE_SECONDS: Final = 30


# --- The stack --------------------------------------------------------------


class StackError(RuntimeError):
    """A part of the stack did not start; the message carries its output."""


class Stack:
    """PostgreSQL, PgBouncer, migrations and the service; start() ... stop().

    `workers` (None: the service's default), `secret`, `previous_secret`,
    `admin_token` and `env` become the service's environment, on top of the
    image's. `python_bin_dir` is where `python` is looked up (default: this
    interpreter's, i.e. the project's virtualenv); point it at a
    production-only virtualenv to run what the image runs. `database_url`
    names an existing, empty database to use instead of starting PostgreSQL
    (a database on a Citus coordinator, for the end-to-end tests on a
    cluster): the stack migrates it and leaves it in place when it stops.
    """

    def __init__(
        self,
        *,
        workers: int | None = None,
        secret: str = signing.SECRET,
        previous_secret: str | None = signing.PREVIOUS_SECRET,
        admin_token: str | None = "stack-admin-token",
        env: Mapping[str, str] | None = None,
        pgbouncer_settings: Mapping[str, str] = PGBOUNCER_SETTINGS,
        python_bin_dir: Path | None = None,
        startup_timeout: float = 60.0,
        stop_timeout: float = STOP_GRACE_SECONDS,
        keep_files: bool = False,
        database_url: str | None = None,
    ) -> None:
        self.workers = workers
        self.secret = secret
        self.previous_secret = previous_secret
        self.admin_token = admin_token
        self.extra_env = dict(env or {})
        self.pgbouncer_settings = dict(pgbouncer_settings)
        self.python_bin_dir = python_bin_dir or Path(sys.executable).parent
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.keep_files = keep_files
        self.database_url = database_url

        self.directory: Path | None = None
        self.postgres: EmbeddedServer | None = None
        self.postgres_url: str | None = None
        self.pgbouncer: PgBouncer | None = None
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None
        self.leftover_processes = False
        self._log_file: int | None = None

    # --- lifecycle ----------------------------------------------------------

    def start(self) -> Stack:
        """Start everything and wait until the service is ready; on failure, undo it all."""
        atexit.register(self.stop)
        try:
            self.directory = Path(tempfile.mkdtemp(prefix="shopify-ingest-stack-"))
            self._start_postgres()
            self._start_pgbouncer()
            self.migrate()
            self.start_service()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the service (SIGTERM, then SIGKILL), PgBouncer and PostgreSQL; idempotent."""
        atexit.unregister(self.stop)
        try:
            self.stop_service()
        finally:
            try:
                if self.pgbouncer is not None:
                    self.pgbouncer.close()
                    self.pgbouncer = None
            finally:
                try:
                    if self.postgres is not None:
                        self.postgres.stop()
                        self.postgres = None
                finally:
                    if self.directory is not None and not self.keep_files:
                        shutil.rmtree(self.directory, ignore_errors=True)
                        self.directory = None

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- the parts ----------------------------------------------------------

    def _start_postgres(self) -> None:
        assert self.directory is not None
        if self.database_url is not None:
            self.postgres_url = self.database_url
            return
        self.postgres = EmbeddedServer(self.directory / "pgdata")
        self.postgres_url = self.postgres.start()

    def _start_pgbouncer(self) -> None:
        assert self.postgres_url is not None
        self.pgbouncer = PgBouncer(self.postgres_url, settings=self.pgbouncer_settings)
        self.pgbouncer.start()

    @property
    def pgbouncer_url(self) -> str:
        assert self.pgbouncer is not None, "the stack is not started"
        return self.pgbouncer.url()

    @property
    def workdir(self) -> Path:
        """The image's WORKDIR: a copy of IMAGE_SOURCE and nothing else."""
        assert self.directory is not None, "the stack is not started"
        workdir = self.directory / "app-root"
        if not workdir.exists():
            workdir.mkdir()
            for name in IMAGE_SOURCE:
                source = ROOT / name
                if source.is_dir():
                    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
                    shutil.copytree(source, workdir / name, ignore=ignore)
                else:
                    shutil.copy2(source, workdir / name)
            subprocess.run(
                IMAGE_COMPILE,
                env=self.base_environment(),
                cwd=workdir,
                capture_output=True,
                timeout=120,
                check=True,
            )
        return workdir

    def base_environment(self) -> dict[str, str]:
        """A container's environment: PATH, the image's ENV, nothing from this process."""
        return {
            "PATH": f"{self.python_bin_dir}{os.pathsep}{os.defpath}",
            "LANG": "C.UTF-8",
            **IMAGE_ENV,
        }

    def migrate_environment(self) -> dict[str, str]:
        """The compose `migrate` service: DATABASE_URL straight at PostgreSQL."""
        assert self.postgres_url is not None, "the stack is not started"
        return {
            **self.base_environment(),
            "LOG_LEVEL": SERVICE_DEFAULTS["LOG_LEVEL"],
            "DATABASE_URL": self.postgres_url,
        }

    def service_environment(self) -> dict[str, str]:
        """The compose `app` service: DATABASE_URL through PgBouncer, loopback HOST and PORT."""
        assert self.port is not None, "the service has no port yet"
        env = {
            **self.base_environment(),
            **SERVICE_DEFAULTS,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": "" if self.workers is None else str(self.workers),
            "DATABASE_URL": self.pgbouncer_url,
            "SHOPIFY_API_SECRET": self.secret,
        }
        if self.previous_secret:
            env["SHOPIFY_API_SECRET_PREVIOUS"] = self.previous_secret
        if self.admin_token:
            env["ADMIN_TOKEN"] = self.admin_token
        env.update(self.extra_env)
        return env

    def migrate(self, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Run MIGRATE_COMMAND as the compose `migrate` service does; raise if it fails."""
        result = subprocess.run(
            MIGRATE_COMMAND,
            env=self.migrate_environment(),
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(
                f"{' '.join(MIGRATE_COMMAND)} exited {result.returncode}:\n"
                f"{result.stdout}{result.stderr}"
            )
        return result

    # --- the service --------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self.port is not None, "the service is not started"
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        assert self.directory is not None, "the stack is not started"
        return self.directory / "service.log"

    def log(self) -> str:
        """What the service wrote on stdout and stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except (AssertionError, FileNotFoundError):
            return ""

    def start_service(self) -> None:
        """SERVICE_COMMAND in its own process group; returns once /health/ready answers 200."""
        if self.running:
            raise StackError("the service is already running")
        self.port = free_port()
        self.exit_code = None
        self.leftover_processes = False
        self._log_file = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.process = subprocess.Popen(
            SERVICE_COMMAND,
            env=self.service_environment(),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise StackError(
                    f"the service exited {self.process.returncode} before it was ready:\n"
                    f"{self.log()[-5000:]}"
                )
            status, body = http_get(self.base_url + "/health/ready", timeout=2.0)
            if status == 200:
                return
            last = f"{status} {body}"
            time.sleep(0.1)
        raise StackError(
            f"the service was not ready within {self.startup_timeout:g} s (last: {last}):\n"
            f"{self.log()[-5000:]}"
        )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        """The service's main process (the image's PID 1 below docker-init)."""
        assert self.process is not None, "the service is not started"
        return self.process.pid

    def terminate(self) -> None:
        """SIGTERM to the main process only, as `docker stop` does."""
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int | None:
        """The main process's exit code, or None if it is still running after `timeout`."""
        assert self.process is not None, "the service is not started"
        try:
            self.exit_code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.exit_code

    def group_alive(self) -> bool:
        """Whether any process of the service's process group (its workers) still runs.

        An exited process the init process has not reaped yet (a zombie: the
        main process's multiprocessing resource tracker, once the main process
        is gone) no longer runs; where /proc tells, it does not count.
        """
        if self.process is None:
            return False
        group = self.process.pid
        if Path("/proc/self/stat").exists():
            return any(state != "Z" for state in _process_states(group))
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def wait_for_group(self, timeout: float) -> bool:
        """Wait until every process of the group has exited; False if some remain."""
        deadline = time.monotonic() + timeout
        while self.group_alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def stop_service(self) -> None:
        """SIGTERM, wait up to stop_timeout, then SIGKILL the whole process group."""
        process = self.process
        if process is None:
            return
        try:
            self.terminate()
            if self.wait(self.stop_timeout) is None:
                self._kill_group()
                self.exit_code = process.wait(timeout=10)
            # Workers outliving the main process are a bug; record it and clean up.
            if not self.wait_for_group(5.0):
                self.leftover_processes = True
                self._kill_group()
        finally:
            self.process = None
            if self._log_file is not None:
                os.close(self._log_file)
                self._log_file = None

    def _kill_group(self) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


def _process_states(group: int) -> Iterator[str]:
    """The state letter (R, S, Z, ...) of each process in the process group, from /proc."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        state, process_group = fields[0], int(fields[2])
        if process_group == group:
            yield state


def http_get(url: str, timeout: float) -> tuple[int | None, str]:
    """(status, body) of a GET, or (None, reason) when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except (OSError, urllib.error.URLError) as error:
        return None, str(error)
