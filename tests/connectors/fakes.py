"""A fake platform: a real HTTP server on 127.0.0.1 in a thread, for connector tests.

Connectors talk to it over real sockets with their real HTTP client, so a test sees
exactly what went over the wire (method, path, query, headers, body) and can answer
with the platform's exact bodies, status codes and headers, or hang past a timeout.

    with FakePlatform() as fake:
        fake.route("POST", "/2/tweets", Reply(201, {"data": {"id": "1"}}))
        ... point the channel's base_url at fake.url ...
        assert fake.requests[0].json() == {...}

Routes match on method and exact path (the query string is ignored: read it from the
recorded request). Several replies for one route are used in turn, the last one
repeating; a callable reply gets the recorded request. Unrouted requests get 404 and
are recorded too.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """An application/x-www-form-urlencoded body, one value per name."""
        return {k: v[-1] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    def arg(self, name: str) -> str | None:
        """One query-string value."""
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds to wait before answering (longer than a client timeout: a hung platform).
    delay: float = 0.0

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        body = self.body
        if self.json is not None:
            body = json.dumps(self.json).encode()
            headers.setdefault("Content-Type", "application/json; charset=UTF-8")
        return body, headers


Responder = Reply | Callable[[Recorded], Reply]


class FakePlatform:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._routes: dict[tuple[str, str], list[Responder]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- set-up ---------------------------------------------------------------------
    def route(self, method: str, path: str, *replies: Responder) -> None:
        if not replies:
            raise ValueError("a route needs at least one reply")
        with self._lock:
            self._routes[(method.upper(), path)] = list(replies)

    @property
    def url(self) -> str:
        assert self._server is not None, "the fake platform is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method.upper() and r.path == path]

    # ---- life -------------------------------------------------------------------------
    def start(self) -> FakePlatform:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes any reply that is still "hanging"
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakePlatform:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- serving ----------------------------------------------------------------------
    def _answer(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            replies = self._routes.get((recorded.method, recorded.path))
            if replies is None:
                return Reply(404, {"fake": f"no route for {recorded.method} {recorded.path}"})
            responder = replies.pop(0) if len(replies) > 1 else replies[0]
        return responder(recorded) if callable(responder) else responder


def _handler_for(fake: FakePlatform) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            recorded = Recorded(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            reply = fake._answer(recorded)
            if reply.delay and fake._stopping.wait(reply.delay):
                return
            payload, headers = reply.encoded()
            try:
                self.send_response(reply.status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test): nothing to answer

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def fake_platform() -> Iterator[FakePlatform]:
    """A started FakePlatform, stopped after the test.

    Importing a fixture into a test module trips ruff (F811), so either expose it from a
    conftest.py (`from tests.connectors.fakes import fake_platform  # noqa: F401`) or
    wrap FakePlatform in a three-line fixture of the test module's own.
    """
    with FakePlatform() as fake:
        yield fake
