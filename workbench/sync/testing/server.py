"""A small threaded HTTP server on 127.0.0.1 for vendor fakes, with fault injection.

Subclasses declare routes (method, path regex, handler) and the vendor's error shape; the
base class parses requests, records them, and injects faults:

- ``status``: answer with a status (429 with ``Retry-After``, 500, ...) in the vendor's
  error format;
- ``timeout``: stall longer than the client's timeout; with ``apply=True`` the request is
  processed first and only the answer is late (the client never sees it: the replay case);
- ``reset``: close the connection without answering.
"""

from __future__ import annotations

import json
import re
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["FakeServer", "Fault", "Reply", "Request"]


@dataclass
class Request:
    """One request as the fake saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    raw: bytes
    status: int = 0
    at: float = 0.0


@dataclass
class Reply:
    """What a route answers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass
class Fault:
    """A failure injected into matching requests (see the module docstring)."""

    kind: str = "status"
    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    method: str | None = None
    path: str | None = None
    times: int = 1
    delay: float = 1.0
    apply: bool = False
    after: int = 0
    hits: int = 0

    def matches(self, req: Request) -> bool:
        """Whether the fault applies to ``req``."""
        return (self.method is None or self.method == req.method) and (
            self.path is None or re.search(self.path, req.path) is not None
        )


Route = tuple[str, re.Pattern[str], Callable[..., Reply]]


class _LocalServer(ThreadingHTTPServer):
    """ThreadingHTTPServer without the reverse DNS lookup (``getfqdn``) at bind time."""

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]


class FakeServer:
    """Base of the vendor fakes: start with ``with Fake() as fake:``; ``fake.url``.

    Parameters
    ----------
    latency : float
        Seconds added to every answer (to have requests in flight).
    keep_bodies : bool
        Keep request bodies in :attr:`requests` (switch off for large benchmarks).
    """

    vendor = "fake"

    def __init__(self, *, latency: float = 0.0, keep_bodies: bool = True) -> None:
        self.keep_bodies = keep_bodies
        self.lock = threading.RLock()
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.latency = latency
        self.in_flight = 0
        self.max_in_flight = 0
        self._flight_lock = threading.Lock()
        self._routes: list[Route] = [(m, re.compile(f"^{p}$"), h) for m, p, h in self.routes()]
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _any(self) -> None:
                server._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

        self._httpd = _LocalServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> FakeServer:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ to override
    def routes(self) -> list[tuple[str, str, Callable[..., Reply]]]:
        """``(method, path regex, handler)``; named groups become handler arguments."""
        return []

    def authenticate(self, req: Request) -> Reply | None:
        """An error reply when the request is not authenticated, else None."""
        return None

    def error(self, status: int, message: str, **extra: Any) -> Reply:
        """An error reply in the vendor's format."""
        return Reply(status, {"error": message, **extra})

    def admit(self, req: Request) -> Reply | None:
        """Vendor throttling before processing (e.g. concurrency, rate windows)."""
        return None

    def decorate(self, req: Request, reply: Reply) -> None:
        """Add vendor headers to every reply (e.g. rate-limit headers)."""

    # ------------------------------------------------------------ helpers for tests
    def inject(self, **kwargs: Any) -> Fault:
        """Add a :class:`Fault`; returns it (``fault.hits`` counts applications)."""
        fault = Fault(**kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def calls(self, method: str | None = None, path: str | None = None) -> list[Request]:
        """Recorded requests, filtered by method and path regex."""
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method)
                and (path is None or re.search(path, r.path))
            ]

    # ------------------------------------------------------------ internals
    def _fault_for(self, req: Request) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.matches(req):
                    if fault.after > 0:
                        fault.after -= 1
                        return None
                    fault.times -= 1
                    fault.hits += 1
                    return fault
        return None

    def _parse(self, h: BaseHTTPRequestHandler) -> Request:
        split = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        ctype = (h.headers.get("Content-Type") or "").split(";")[0].strip()
        body: Any = None
        if raw and "json" in ctype:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
        elif raw and ctype == "application/x-www-form-urlencoded":
            body = {k: v[-1] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
        elif raw:
            body = raw
        return Request(
            method=h.command,
            path=unquote(split.path),
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in h.headers.items()},
            body=body,
            raw=raw,
            at=time.time(),
        )

    def _dispatch(self, req: Request) -> Reply | None:
        fault = self._fault_for(req)
        if fault is not None:
            if fault.kind == "reset":
                return None
            if fault.kind == "timeout":
                if fault.apply:  # processed, but the answer comes too late
                    reply = self._process(req)
                    time.sleep(fault.delay)
                    return reply
                time.sleep(fault.delay)
                return self.error(504, "stalled by fault injection")
            else:
                reply = (
                    Reply(fault.status, fault.body, dict(fault.headers))
                    if fault.body is not None
                    else self.error(fault.status, "injected failure")
                )
                reply.headers.update(fault.headers)
                return reply
        return self._process(req)

    def _process(self, req: Request) -> Reply:
        denied = self.authenticate(req) or self.admit(req)
        if denied is not None:
            return denied
        for method, pattern, handler in self._routes:
            m = pattern.match(req.path)
            if m and method == req.method:
                with self.lock:
                    return handler(req, **m.groupdict())
        return self.error(404, f"no route for {req.method} {req.path}")

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        req = self._parse(h)
        with self._flight_lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency:
                time.sleep(self.latency)
            reply = self._dispatch(req)
        finally:
            with self._flight_lock:
                self.in_flight -= 1
        with self.lock:
            req.status = reply.status if reply is not None else 0
            if not self.keep_bodies:
                req.body, req.raw = None, b""
            self.requests.append(req)
        if reply is None:
            h.close_connection = True
            return
        self.decorate(req, reply)
        data = b"" if reply.body is None else json.dumps(reply.body).encode()
        try:
            h.send_response(reply.status)
            if data:
                h.send_header("Content-Type", reply.content_type)
            h.send_header("Content-Length", str(len(data)))
            for key, value in reply.headers.items():
                h.send_header(key, value)
            h.end_headers()
            if data:
                h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True
