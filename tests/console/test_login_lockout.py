"""The login lockout against the real service: a new X-Forwarded-For with each guess,
from loopback, is not a new client (no TRUSTED_PROXIES: the header is not believed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.console.lockout import FAILURES_BEFORE_LOCK
from tests.console.support import (
    PASSWORD,
    WRONG_PASSWORD,
    Service,
    console_service,
    create_user,
    csrf,
)

# The real service, a process of its own.
pytestmark = [pytest.mark.stack, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def service(create_database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    url: str = create_database()
    log_path = tmp_path_factory.mktemp("console-lockout") / "service.log"
    with console_service(url, log_path) as running:
        yield running


async def test_rotating_x_forwarded_for_does_not_escape_the_lockout(service: Service) -> None:
    username = await create_user(service.database_url)
    async with httpx.AsyncClient(base_url=service.base_url, timeout=10.0) as client:

        async def attempt(name: str, password: str, number: int) -> httpx.Response:
            forwarded = {"X-Forwarded-For": f"198.51.100.{number}"}
            return await client.post(
                "/admin/public/login/",
                json={"username": name, "password": password},
                headers={**await csrf(client), **forwarded},
            )

        for number in range(FAILURES_BEFORE_LOCK):
            assert (await attempt(f"guess-{number}", WRONG_PASSWORD, number)).status_code == 401
        refused = await attempt(username, PASSWORD, 200)

    assert refused.status_code == 429, refused.text
    assert int(refused.headers["retry-after"]) > 0
    assert '"address": "127.0.0.1"' in service.log()
    assert "198.51.100." not in service.log()
