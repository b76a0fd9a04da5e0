"""Memory an unauthenticated client can make a worker hold is bounded.

Against the deployed service (two workers): a request head far over
MAX_HEADER_BYTES is refused with 431 as it arrives, and a flood of large
unsigned bodies is held to UNVERIFIED_BODY_BUDGET_BYTES per worker (beyond
it: 503 with Retry-After, before the body is read). Meanwhile the workers'
memory stays bounded and /health keeps answering promptly.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest

from app.devtools.stack import Stack, http_get
from tests.support import shopify

pytestmark = [pytest.mark.pgbouncer, pytest.mark.timed, pytest.mark.timeout(180)]

MIB = 1024 * 1024
HEALTH_WITHIN = 1.0  # seconds /health may take while the attack runs


def workers_rss(stack: Stack) -> int:
    """Resident memory of the service's processes (main and workers), in bytes."""
    main = psutil.Process(stack.pid)
    total = 0
    for process in (main, *main.children(recursive=True)):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += process.memory_info().rss
    return total


class Watch:
    """Samples the service's RSS and /health's latency in the background."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.peak_rss = workers_rss(stack)
        self.baseline = self.peak_rss
        self.slowest_health = 0.0
        self.health_failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, workers_rss(self.stack))
            started = time.monotonic()
            status, body = http_get(self.stack.base_url + "/health", timeout=5.0)
            elapsed = time.monotonic() - started
            self.slowest_health = max(self.slowest_health, elapsed)
            if status != 200:
                self.health_failures.append(f"{status} {body[:100]}")
            time.sleep(0.05)

    @contextlib.contextmanager
    def running(self) -> Iterator[Watch]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(10)

    @property
    def growth(self) -> int:
        return self.peak_rss - self.baseline


def read_answer(sock: socket.socket) -> tuple[int | None, dict[str, str], bytes]:
    response = http.client.HTTPResponse(sock, method="POST")
    try:
        response.begin()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    except (OSError, http.client.HTTPException):
        return None, {}, b""


def huge_header(port: int, size: int) -> tuple[int | None, bytes, float]:
    """Send a header of `size` bytes, 1 MiB at a time, until the server stops us."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        head = b"POST /webhooks/shopify HTTP/1.1\r\nHost: x\r\nX-Shopify-Hmac-Sha256: "
        with contextlib.suppress(OSError):
            sock.sendall(head)
            chunk = b"a" * MIB
            for _ in range(size // MIB):
                sock.sendall(chunk)
            sock.sendall(b"\r\nContent-Length: 2\r\n\r\n{}")
        status, _, body = read_answer(sock)
    return status, body, time.monotonic() - started


def unsigned_body(port: int, size: int, chunked: bool) -> tuple[int | None, dict[str, str]]:
    body = b'{"id": 1, "note": "' + b"n" * (size - 30) + b'"}'
    headers = shopify.headers("orders/create", body, secret="forged")
    head = [b"POST /webhooks/shopify HTTP/1.1", b"Host: x", b"Connection: close"]
    head += [f"{name}: {value}".encode() for name, value in headers.items()]
    head.append(
        b"Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}".encode()
    )
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        with contextlib.suppress(OSError):  # refused early: the server closes on us
            sock.sendall(b"\r\n".join(head) + b"\r\n\r\n")
            for start in range(0, len(body), MIB):
                piece = body[start : start + MIB]
                if chunked:
                    piece = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
                sock.sendall(piece)
                time.sleep(0.02)  # a slow client: bodies overlap in the workers
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        status, answer_headers, _ = read_answer(sock)
    return status, answer_headers


def test_a_huge_header_is_refused_as_it_arrives(stack: Stack) -> None:
    assert stack.port is not None
    with Watch(stack).running() as watch:
        status, body, elapsed = huge_header(stack.port, 64 * MIB)
    assert status == 431, (status, body[:200])
    assert b"exceed" in body
    assert elapsed < 5.0, f"took {elapsed:.1f} s"
    assert watch.growth < 30 * MIB, f"RSS grew by {watch.growth / MIB:.0f} MiB"
    assert not watch.health_failures and watch.slowest_health < HEALTH_WITHIN, (
        watch.health_failures,
        watch.slowest_health,
    )
    # The service is unharmed.
    assert http_get(stack.base_url + "/health/ready", timeout=5.0)[0] == 200


def test_a_flood_of_unsigned_large_bodies_is_held_to_the_budget(stack: Stack) -> None:
    assert stack.port is not None
    port = stack.port
    with Watch(stack).running() as watch, ThreadPoolExecutor(max_workers=50) as pool:
        flood = [pool.submit(unsigned_body, port, 10 * MIB - 64, i % 5 == 0) for i in range(40)]
        answers = [future.result() for future in flood]

    statuses = [status for status, _ in answers]
    assert not [s for s in statuses if s is not None and s not in (401, 503)], statuses
    refused = [headers for status, headers in answers if status == 503]
    assert refused, statuses
    assert all(headers.get("retry-after") == "5" for headers in refused)
    # Two workers, each holding at most its 50 MiB budget (joined into one
    # buffer when read: twice that at worst), instead of 40 x 10 MiB.
    print(f"RSS grew by {watch.growth / MIB:.0f} MiB; answers {statuses}")
    assert watch.growth < 260 * MIB, f"RSS grew by {watch.growth / MIB:.0f} MiB"
    assert not watch.health_failures and watch.slowest_health < HEALTH_WITHIN, (
        watch.health_failures,
        watch.slowest_health,
    )
    # The budget is given back: a genuine delivery goes through afterwards.
    body = shopify.encode(shopify.order(9_100_001, customer_id=9_100_002))
    answer = http_get(stack.base_url + "/health/ready", timeout=5.0)
    assert answer[0] == 200
    response = httpx.post(
        stack.base_url + "/webhooks/shopify",
        content=body,
        headers=shopify.headers("orders/create", body, shop="budget-after.myshopify.com"),
        timeout=10,
    )
    assert response.status_code == 200, response.text
