"""The committed schema, migrations/schema.sql: what a freshly migrated database holds.

It is `pg_dump --schema-only` of such a database, made stable from run to run:
without comments (they carry versions), SET lines, owners, privileges and
pg_dump's per-run \\restrict key, and without the bodies of functions (those
are app/db/functions/*.sql; a test checks that the installed ones are the
same). pg_dump writes a given server version's schema in its own way, so the
file says which major version made it, and is only compared with dumps of
that version. `python -m app db dump-schema` writes it again;
tests/integration/test_schema.py compares it with a freshly migrated database.
"""

from __future__ import annotations

import re
import shutil
import subprocess

from app.db.piccolo_app import MIGRATIONS_FOLDER

SCHEMA_FILE = MIGRATIONS_FOLDER / "schema.sql"

_HEADER = """\
-- The schema a fresh database gets from the migrations: pg_dump --schema-only
-- of PostgreSQL {major}, normalised (app/db/schema_dump.py). Generated: do not
-- edit. Written again by `python -m app db dump-schema` with DATABASE_URL set
-- to a PostgreSQL {major} server (it migrates a scratch database there).
"""
_MAJOR_IN_HEADER = re.compile(r"pg_dump --schema-only\n-- of PostgreSQL (\d+),")
_DUMPED_FROM = re.compile(r"^-- Dumped from database version (\d+)", re.MULTILINE)
_DUMPED_BY = re.compile(r"^-- Dumped by pg_dump version (\d+)", re.MULTILINE)
# A function's body, dollar-quoted (the tag may be $$, $_$, ...).
_FUNCTION_BODY = re.compile(
    r"^(CREATE FUNCTION public\.(\w+)\(.*?\n    AS )(\$\w*\$).*?\3;$", re.DOTALL | re.MULTILINE
)
_NOISE = re.compile(r"^(--.*|SET .*|SELECT pg_catalog\.set_config\(.*|\\(un)?restrict .*)$")


class SchemaDumpError(Exception):
    pass


def pg_dump_major() -> int | None:
    """The major version of the pg_dump on PATH; None when there is none."""
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        return None
    version = subprocess.run(  # noqa: S603 (our own argument list)
        [pg_dump, "--version"], capture_output=True, text=True, check=True
    ).stdout
    found = re.search(r"(\d+)(\.\d+)?", version)
    return int(found.group(1)) if found else None


def committed_major(schema: str) -> int | None:
    """The PostgreSQL major version a committed schema was dumped from."""
    found = _MAJOR_IN_HEADER.search(schema)
    return int(found.group(1)) if found else None


def dump_schema(url: str) -> str:
    """The normalised schema of the database at `url`, by the pg_dump on PATH."""
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise SchemaDumpError("pg_dump is not on PATH")
    result = subprocess.run(  # noqa: S603 (our own argument list)
        [pg_dump, "--schema-only", "--no-owner", "--no-privileges", "--no-tablespaces", url],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SchemaDumpError(f"pg_dump failed: {result.stderr.strip()}")
    return normalise(result.stdout)


def normalise(dump: str) -> str:
    server, client = _DUMPED_FROM.search(dump), _DUMPED_BY.search(dump)
    if server is None or client is None:
        raise SchemaDumpError("pg_dump's output does not say its versions")
    if server.group(1) != client.group(1):
        raise SchemaDumpError(
            f"pg_dump {client.group(1)} dumps a PostgreSQL {server.group(1)} server in its"
            " own way: use the pg_dump of the server's version"
        )
    without_bodies = _FUNCTION_BODY.sub(r"\1$$ app/db/functions/\2.sql $$;", dump)
    lines = [line for line in without_bodies.splitlines() if not _NOISE.match(line)]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return _HEADER.format(major=server.group(1)) + "\n" + text + "\n"
