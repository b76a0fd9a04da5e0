"""Memory a client can make a worker hold before its request is verified.

Nothing is known about a request until its signature (or admin token) has
been checked, and checking needs the whole body. Two bounds keep an
unauthenticated client from filling a worker's memory first:

- the request head (request line and headers) is at most MAX_HEADER_BYTES:
  larger, the server answers 431 and closes the connection as the bytes
  arrive, before it has buffered more (`BoundedHttpToolsProtocol`);
- the request bodies held at once by one worker before their signature is
  checked are at most UNVERIFIED_BODY_BUDGET_BYTES: beyond it a request is
  answered 503 with Retry-After before more of it is read
  (`UnverifiedBodyBudget`). A request declaring its length reserves it all
  up front; a chunked one as its chunks arrive. The webhook endpoint gives
  its share back as soon as the signature is valid; any other request when
  it ends.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from dataclasses import dataclass

from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_503_SERVICE_UNAVAILABLE
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.http.errors import RETRY_AFTER_SECONDS

log = logging.getLogger("app.limits")

BUDGET_DETAIL = "the service is busy receiving other requests; retry later"
# Bytes fed to the HTTP parser at a time while it reads a request head, so a
# head over the limit is refused within this many bytes of it.
_HEAD_SLICE = 4096


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """Uvicorn's httptools protocol, refusing request heads over a size limit with 431.

    httptools accumulates a header's value across reads until it ends, with
    no limit of its own (Uvicorn's `h11_max_incomplete_event_size` only
    applies to h11): a 200 MB header was read whole. The limit is Uvicorn's
    `h11_max_incomplete_event_size` setting, which serve sets from
    MAX_HEADER_BYTES, so that both protocols honour the same number.
    """

    _head_bytes = 0
    _reading_head = True

    def data_received(self, data: bytes) -> None:
        start = 0
        while self._reading_head and start < len(data):
            piece = data[start : start + _HEAD_SLICE]
            start += len(piece)
            self._head_bytes += len(piece)
            super().data_received(piece)
            if self.transport.is_closing():
                return
            if self._reading_head and self._head_bytes > self._max_head_bytes:
                self._refuse_head()
                return
        if start < len(data):
            super().data_received(data[start:])

    @property
    def _max_head_bytes(self) -> int:
        limit: int = self.config.h11_max_incomplete_event_size or 65536
        return limit

    def on_headers_complete(self) -> None:
        self._reading_head, self._head_bytes = False, 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._reading_head, self._head_bytes = True, 0
        super().on_message_complete()

    def _refuse_head(self) -> None:
        log.warning(
            "request head too large", extra={"fields": {"limit_bytes": self._max_head_bytes}}
        )
        body = json.dumps(
            {
                "status_code": 431,
                "detail": f"request line and headers exceed {self._max_head_bytes} bytes",
            }
        ).encode()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body
        )
        self.transport.close()


@dataclass
class _Reservation:
    """The bytes one request holds against the budget."""

    budget: UnverifiedBodyBudget
    held: int = 0
    verified: bool = False

    def take(self, size: int) -> bool:
        if self.budget.held + size > self.budget.limit:
            return False
        self.budget.held += size
        self.held += size
        return True

    def give_back(self) -> None:
        self.budget.held -= self.held
        self.held = 0


_current: ContextVar[_Reservation | None] = ContextVar("unverified_body", default=None)


def body_verified() -> None:
    """The request's body is authenticated: it no longer counts against the budget."""
    reservation = _current.get()
    if reservation is not None:
        reservation.verified = True
        reservation.give_back()


class BudgetExceeded(HTTPException):
    status_code = HTTP_503_SERVICE_UNAVAILABLE


class UnverifiedBodyBudget:
    """ASGI middleware: at most `limit` bytes of unverified request bodies per worker."""

    def __init__(self, app: ASGIApp, limit: int, max_body: int) -> None:
        self.app = app
        self.limit = limit
        self.max_body = max_body
        self.held = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        reservation = _Reservation(self)
        declared = _content_length(scope)
        # A declared length is reserved before a byte of the body is read. One
        # over MAX_BODY_BYTES is not: it is refused with 413 before any is read.
        if declared and declared <= self.max_body and not reservation.take(declared):
            await _refuse(scope, send)
            return
        token = _current.set(reservation)
        try:
            await self.app(scope, _counting(reservation, receive, scope), send)
        finally:
            _current.reset(token)
            reservation.give_back()


def _counting(reservation: _Reservation, receive: Receive, scope: Scope) -> Receive:
    """`receive`, reserving what arrives beyond the reservation (a chunked body)."""
    received = 0

    async def counting_receive() -> ReceiveMessage:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request" and not reservation.verified:
            received += len(message.get("body", b""))
            beyond = received - reservation.held
            if beyond > 0 and not reservation.take(beyond):
                _log_refusal(scope)
                raise BudgetExceeded(
                    detail=BUDGET_DETAIL,
                    headers={"Retry-After": RETRY_AFTER_SECONDS, "Connection": "close"},
                )
        return message

    return counting_receive


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return max(int(value), 0)
            except ValueError:
                return None
    return None


def _log_refusal(scope: Scope) -> None:
    log.warning("unverified body budget exhausted", extra={"fields": {"path": scope.get("path")}})


async def _refuse(scope: Scope, send: Send) -> None:
    _log_refusal(scope)
    body = json.dumps({"status_code": HTTP_503_SERVICE_UNAVAILABLE, "detail": BUDGET_DETAIL})
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": HTTP_503_SERVICE_UNAVAILABLE,
        "headers": [
            (b"content-type", b"application/json"),
            (b"retry-after", RETRY_AFTER_SECONDS.encode()),
            (b"connection", b"close"),
        ],
    }
    end: HTTPResponseBodyEvent = {
        "type": "http.response.body",
        "body": body.encode(),
        "more_body": False,
    }
    await send(start)
    await send(end)
