"""The HTTP side: Shopify's GraphQL route, auth, injected faults, bulk result files.

A real ThreadingHTTPServer on a loopback port, so the sync's own httpx client,
timeouts and retries are exercised exactly as against Shopify.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qs, urlsplit

from . import graphql_api
from .bulk import BulkResultStore, stream_file
from .data import DEFAULT_SCOPES, FakeShop
from .oauth import OAuthRefusal, OAuthServer, StandInApp

GRAPHQL_ROUTE = re.compile(r"^/(?P<shop>[^/]+)/admin/api/(?P<version>[^/]+)/graphql\.json$")
OAUTH_ROUTE = re.compile(r"^/(?P<shop>[^/]+)/admin/oauth/(?P<step>authorize|access_token)$")
BULK_ROUTE = re.compile(r"^/bulk-results/(?P<name>[A-Za-z0-9_\-]+\.jsonl)$")
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
RATE_LIMITED = "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."  # noqa: E501

Kind = Literal["graphql", "bulk_result", "token", "authorize", "other"]


@dataclass
class RecordedRequest:
    """One request as the stand-in saw it (status None: the connection was dropped)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    kind: Kind
    status: int | None = None


@dataclass(frozen=True)
class Fault:
    """Something to go wrong with the next matching request(s), before auth and validation."""

    action: Literal["status", "slow", "drop", "drop_after", "throttled", "bulk_result"]
    code: int = 0
    retry_after: float | None = None
    delay: float = 0.0
    body: Any = None

    @classmethod
    def status(cls, code: int, retry_after: float | None = None, body: Any = None) -> Fault:
        """Answer with this HTTP status (429 gets Retry-After and Shopify's body).

        `body` is sent as JSON, or as it is when it is bytes (an answer no JSON encoder makes).
        """
        return cls("status", code=code, retry_after=retry_after, body=body)

    @classmethod
    def answer(cls, body: Any) -> Fault:
        """HTTP 200 with this body instead of the real answer (a malformed or hostile one)."""
        return cls("status", code=HTTPStatus.OK, body=body)

    @classmethod
    def bulk_result(
        cls, body: bytes | Iterable[bytes] | None = None, line_delay: float = 0.0
    ) -> Fault:
        """A bulk result file served as these bytes (None: the real file), a line at a time,
        `line_delay` seconds apart (kind="bulk_result")."""
        return cls("bulk_result", body=body, delay=line_delay)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Sleep, then answer normally: for client timeouts."""
        return cls("slow", delay=seconds)

    @classmethod
    def drop(cls) -> Fault:
        """Read the request, then close the connection without a response."""
        return cls("drop")

    @classmethod
    def drop_after(cls) -> Fault:
        """Carry the request out (a token grant takes effect), then drop the answer."""
        return cls("drop_after")

    @classmethod
    def throttled(cls) -> Fault:
        """HTTP 200 with the THROTTLED error body, whatever the bucket holds."""
        return cls("throttled")


@dataclass
class _Injected:
    fault: Fault
    remaining: int
    kind: str
    shop: str | None


@dataclass
class _State:
    """What the handler threads share; one lock for the request log and fault queue."""

    shops: dict[str, FakeShop] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    faults: list[_Injected] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class ShopifyStandIn:
    """Shopify's GraphQL Admin API on 127.0.0.1, as a context manager.

    `base_url` is a template ("http://127.0.0.1:PORT/{shop}"): the client appends
    "/admin/api/<version>/graphql.json" after filling in the shop's domain.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        app: StandInApp | None = None,
        *,
        delay: float = 0.0,
    ) -> None:
        self._address = (host, port)
        # Seconds every Admin API call waits before it is answered (a real data
        # centre's round trip, for the fleet benchmark).
        self.delay = delay
        self._state = _State()
        # The app's credentials, and each shop's tokens as Shopify holds them.
        self.oauth = OAuthServer(app)
        self.results = BulkResultStore()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        graphql_api.schema()  # build it now, not inside the first (timed) request
        server = _Server(self._address, _Handler)
        server.standin = self
        self._server = server
        self.results.base_url = f"http://{self._address[0]}:{self.port}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.results.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the stand-in first"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self._address[0]}:{self.port}/{{shop}}"

    def graphql_url(self, shop: str, version: str = "2026-04") -> str:
        return f"{self.base_url.format(shop=shop)}/admin/api/{version}/graphql.json"

    # -- shops, requests, faults --------------------------------------------------------------

    def add_shop(
        self,
        domain: str,
        token: str | None = "shpat_test",
        bucket_size: float = 1000,
        restore_rate: float = 100.0,
        scopes: tuple[str, ...] = DEFAULT_SCOPES,
        **options: Any,
    ) -> FakeShop:
        shop = FakeShop(
            domain,
            token=token,
            bucket_size=bucket_size,
            restore_rate=restore_rate,
            scopes=scopes,
            **options,
        )
        shop.results = self.results
        self.oauth.register(domain, non_expiring=token, scopes=tuple(scopes))
        with self._state.lock:
            self._state.shops[domain] = shop
        return shop

    def shop(self, domain: str) -> FakeShop:
        return self._state.shops[domain]

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._state.lock:
            return list(self._state.requests)

    def inject(
        self, fault: Fault, times: int = 1, kind: Kind = "graphql", shop: str | None = None
    ) -> None:
        """Queue a fault for the next `times` requests of `kind` (and `shop`, if given)."""
        with self._state.lock:
            self._state.faults.append(_Injected(fault, times, kind, shop))

    def clear_faults(self) -> None:
        with self._state.lock:
            self._state.faults.clear()

    def take_fault(self, kind: str, shop: str | None) -> Fault | None:
        with self._state.lock:
            for injected in self._state.faults:
                if injected.kind == kind and injected.shop in (None, shop):
                    injected.remaining -= 1
                    if injected.remaining <= 0:
                        self._state.faults.remove(injected)
                    return injected.fault
        return None

    def record(self, request: RecordedRequest) -> None:
        with self._state.lock:
            self._state.requests.append(request)

    def find_shop(self, domain: str) -> FakeShop | None:
        with self._state.lock:
            return self._state.shops.get(domain)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not hold up close()
    # socketserver's default backlog of 5 refuses (or delays by a SYN retry, a
    # second or more) the connections of a fleet of shops syncing side by side.
    request_queue_size = 1024
    standin: ShopifyStandIn

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: clients that time out or hang up are part of the tests, not errors."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects from Shopify
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the stand-in never writes to stdout or stderr."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    # -- dispatch -----------------------------------------------------------------------------

    def _dispatch(self) -> None:
        standin = self.server.standin
        path = urlsplit(self.path).path
        raw = self._read_body()
        graphql = GRAPHQL_ROUTE.match(path)
        oauth = OAUTH_ROUTE.match(path)
        kind: Kind = "other"
        if graphql:
            kind = "graphql"
        elif oauth:
            kind = "token" if oauth["step"] == "access_token" else "authorize"
        elif path.startswith("/bulk-results/"):
            kind = "bulk_result"
        request = RecordedRequest(
            method=self.command,
            path=path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=_json_or_none(raw),
            kind=kind,
        )
        route = graphql or oauth
        shop_domain = route["shop"] if route else None
        if standin.delay and kind == "graphql":
            time.sleep(standin.delay)
        fault = standin.take_fault(kind, shop_domain)
        if fault is not None and self._apply_fault(fault, request, shop_domain):
            return
        if graphql:
            self._graphql(request, graphql["shop"], graphql["version"], raw)
        elif oauth and kind == "authorize":
            self._authorize(request, oauth["shop"])
        elif oauth:
            self._token(
                request,
                oauth["shop"],
                raw,
                drop_answer=fault is not None and fault.action == "drop_after",
            )
        elif kind == "bulk_result":
            self._bulk_result(request, path)
        else:
            self._send_json(request, HTTPStatus.NOT_FOUND, {"errors": "Not Found"})

    def _apply_fault(self, fault: Fault, request: RecordedRequest, shop: str | None) -> bool:
        """Carry out a fault; False when the request should then be answered normally."""
        if fault.action == "drop_after":
            return False  # carried out, then the answer is dropped (_token)
        if fault.action == "slow":
            time.sleep(fault.delay)
            return False
        if fault.action == "drop":
            self._drop(request)
            return True
        if fault.action == "throttled":
            self._send_json(request, HTTPStatus.OK, self._throttled_body(request, shop))
            return True
        if fault.action == "bulk_result":
            self._bulk_result(request, urlsplit(self.path).path, fault)
            return True
        headers = {}
        body = fault.body
        if fault.code == HTTPStatus.TOO_MANY_REQUESTS:
            body = body if body is not None else {"errors": RATE_LIMITED}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(float(fault.retry_after))
        if body is None:
            body = {"errors": HTTPStatus(fault.code).phrase}
        self._send_json(request, fault.code, body, headers)
        return True

    def _throttled_body(self, request: RecordedRequest, domain: str | None) -> dict[str, Any]:
        shop = self.server.standin.find_shop(domain or "")
        if shop is None:
            shop = FakeShop(domain or "unknown.myshopify.com")
        body = request.body if isinstance(request.body, dict) else {}
        query, variables = body.get("query"), body.get("variables")
        requested = None
        if isinstance(query, str):
            requested = graphql_api.requested_cost_of(
                query, variables if isinstance(variables, dict) else None
            )
        with shop.lock:
            return graphql_api.throttled_body(shop, requested)

    # -- GraphQL ------------------------------------------------------------------------------

    def _graphql(self, request: RecordedRequest, domain: str, version: str, raw: bytes) -> None:
        shop = self.server.standin.find_shop(domain)
        if shop is None:
            self._send_json(request, HTTPStatus.NOT_FOUND, {"errors": "Not Found"})
            return
        token = self.headers.get("X-Shopify-Access-Token") or ""
        if not self.server.standin.oauth.accepts(domain, token):
            headers = {"WWW-Authenticate": 'Basic Realm="Shopify API Authentication"'}
            self._send_json(request, HTTPStatus.UNAUTHORIZED, {"errors": INVALID_TOKEN}, headers)
            return
        if self.command != "POST":
            self._send_json(request, HTTPStatus.BAD_REQUEST, {"errors": "Use POST"})
            return
        if not isinstance(request.body, dict):
            message = "Invalid JSON in request body" if raw else "Request body is empty"
            self._send_json(request, HTTPStatus.BAD_REQUEST, {"errors": message})
            return
        if not isinstance(request.body.get("query"), str):
            missing = {"errors": {"query": "Required parameter missing or invalid"}}
            self._send_json(request, HTTPStatus.BAD_REQUEST, missing)
            return
        outcome = graphql_api.handle(shop, version, request.body)
        self._send_json(request, HTTPStatus.OK, outcome.body, {"X-Shopify-API-Version": version})

    # -- OAuth --------------------------------------------------------------------------------

    def _authorize(self, request: RecordedRequest, domain: str) -> None:
        if self.command != "GET":
            self._send_json(request, HTTPStatus.METHOD_NOT_ALLOWED, {"errors": "GET only"})
            return
        query = {key: values[-1] for key, values in parse_qs(urlsplit(self.path).query).items()}
        try:
            location = self.server.standin.oauth.authorize(domain, query)
        except OAuthRefusal as refusal:
            self._send_json(request, refusal.status, refusal.body)
            return
        request.status = int(HTTPStatus.FOUND)
        self.server.standin.record(request)
        self.send_response(HTTPStatus.FOUND)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _token(self, request: RecordedRequest, domain: str, raw: bytes, drop_answer: bool) -> None:
        if self.command != "POST":
            self._send_json(request, HTTPStatus.METHOD_NOT_ALLOWED, {"errors": "POST only"})
            return
        body: Any = request.body
        if "x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
            body = {key: values[-1] for key, values in parse_qs(raw.decode()).items()}
        if not isinstance(body, dict):
            self._send_json(request, HTTPStatus.BAD_REQUEST, {"error": "invalid_request"})
            return
        request.body = body
        try:
            answer: Any = self.server.standin.oauth.token(domain, body)
            status = int(HTTPStatus.OK)
        except OAuthRefusal as refusal:
            answer, status = refusal.body, refusal.status
        if drop_answer:
            self._drop(request)
            return
        self._send_json(request, status, answer)

    def _drop(self, request: RecordedRequest) -> None:
        self.server.standin.record(request)
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may have gone already
            self.connection.shutdown(socket.SHUT_RDWR)

    # -- bulk results -------------------------------------------------------------------------

    def _bulk_result(self, request: RecordedRequest, path: str, fault: Fault | None = None) -> None:
        if self.command != "GET":
            self._send_json(request, HTTPStatus.METHOD_NOT_ALLOWED, {"errors": "GET only"})
            return
        results = self.server.standin.results
        match = BULK_ROUTE.match(path)
        name = match["name"] if match else ""
        file = results.path(name)
        if file is None or not file.exists():
            self._send_json(request, HTTPStatus.NOT_FOUND, {"errors": "NoSuchKey"})
            return
        if not results.signed(name, urlsplit(self.path).query):
            self._send_json(request, HTTPStatus.FORBIDDEN, {"errors": "SignatureDoesNotMatch"})
            return
        request.status = int(HTTPStatus.OK)
        self.server.standin.record(request)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/jsonl")
        if fault is None:
            self.send_header("Content-Length", str(file.stat().st_size))
            self.end_headers()
            stream_file(file, self.wfile)
            return
        # Chunked: a replaced body's length is not known in advance.
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        body = fault.body if fault.body is not None else file.read_bytes().splitlines(True)
        chunks = [body] if isinstance(body, bytes) else body
        with contextlib.suppress(OSError):  # the client may give up first
            for chunk in _paced(chunks, fault.delay):
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")

    # -- plumbing -----------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _send_json(
        self,
        request: RecordedRequest,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Record the request (before answering, so a test sees it once it has the answer)."""
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        request.status = int(status)
        self.server.standin.record(request)
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Request-Id", str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


def _paced(chunks: Iterable[bytes], line_delay: float) -> Iterable[bytes]:
    """The chunks as they are, or (with a delay) cut into lines sent `line_delay` apart."""
    if not line_delay:
        yield from chunks
        return
    for chunk in chunks:
        for line in chunk.splitlines(True):
            time.sleep(line_delay)
            yield line


def _json_or_none(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
