"""`python -m app console`: the users of the operator console (Piccolo Admin at /admin/).

    printf '%s\\n' "$PASSWORD" | python -m app console create-user alice --email alice@example.com
    python -m app console set-password alice     # asks twice on a terminal; ends alice's sessions
    python -m app console delete-user alice
    python -m app console list-users

The password is read from standard input (one line) or, on a terminal,
asked for twice without echo: never from the command line, where `ps` and
the shell's history would show it. It is stored as Piccolo hashes it
(PBKDF2-SHA256) and never printed. Users are active admins of Piccolo Admin
(they can log in), not superusers (the console manages no users).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import Any

import asyncpg

from app.cli.database import database_url
from app.config import Settings

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128  # Piccolo's limit


class Refused(Exception):
    """What the command cannot do, said to the operator (exit 1)."""


def run(settings: Settings, args: argparse.Namespace) -> int:
    password = ""
    if args.action in ("create-user", "set-password"):
        password = _read_password()
        if problem := _password_problem(password):
            print(f"error: {problem}", file=sys.stderr)
            return 2
    if args.action == "create-user" and not _plausible_email(args.email):
        print("error: --email must be an email address", file=sys.stderr)
        return 2
    with database_url(settings):
        try:
            print(asyncio.run(_act(args, password)))
        except Refused as refused:
            print(f"error: {refused}", file=sys.stderr)
            return 1
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            print(f"error: the database did not answer: {type(error).__name__}", file=sys.stderr)
            return 1
    return 0


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != first:
            return ""
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _password_problem(password: str) -> str | None:
    if not password:
        return "give the password on standard input (one line), or type it twice on a terminal"
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        return f"the password must have {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
    if not password.isprintable():
        return "the password must be printable characters"
    return None


def _plausible_email(email: str) -> bool:
    name, at, domain = email.partition("@")
    return bool(name and at and "." in domain and len(email) <= 255 and email.isprintable())


async def _act(args: argparse.Namespace, password: str) -> str:
    # Piccolo's tables, through piccolo_conf.py's engine (DATABASE_URL), imported
    # once database_url() has set it.
    from piccolo.apps.user.tables import BaseUser
    from piccolo_api.session_auth.tables import SessionsBase

    if args.action == "list-users":
        rows = await BaseUser.select(
            BaseUser.username, BaseUser.email, BaseUser.active, BaseUser.admin, BaseUser.last_login
        ).order_by(BaseUser.username)
        return "\n".join(_user_line(row) for row in rows) or "no console users"
    user_id = await BaseUser.select(BaseUser.id).where(BaseUser.username == args.username).first()
    if args.action == "create-user":
        if user_id is not None:
            raise Refused(f"user {args.username} exists; change its password with set-password")
        try:
            await BaseUser.create_user(
                username=args.username,
                password=password,
                email=args.email,
                active=True,
                admin=True,
                superuser=False,
            )
        except asyncpg.UniqueViolationError:
            raise Refused(f"a user with that username or email exists: {args.username}") from None
        except ValueError as error:  # Piccolo's own checks
            raise Refused(str(error)) from None
        return f"user {args.username} created: they can log in at /admin/"
    if user_id is None:
        raise Refused(f"no console user {args.username}")
    sessions = SessionsBase.delete().where(SessionsBase.user_id == user_id["id"])
    if args.action == "set-password":
        await BaseUser.update_password(args.username, password)
        await sessions
        return f"password of {args.username} changed; their sessions ended"
    await sessions
    await BaseUser.delete().where(BaseUser.id == user_id["id"])
    return f"user {args.username} deleted"


def _user_line(row: dict[str, Any]) -> str:
    flags = ", ".join(
        flag for flag, on in (("active", row["active"]), ("admin", row["admin"])) if on
    )
    last = row["last_login"].isoformat(timespec="seconds") if row["last_login"] else "never"
    return f"{row['username']}  {row['email']}  [{flags or 'inactive'}]  last login: {last}"
