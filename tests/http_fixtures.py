"""A loopback HTTP server for download tests (nothing in the tests reaches the internet).

:class:`FileServer` serves byte payloads registered per path from a ``ThreadingHTTPServer`` on 127.0.0.1
(port chosen by the OS) and can be scripted to fail: each registered path takes a list of faults consumed one
per request -- ``"truncate"`` (announce the full Content-Length, send half the body, close), ``"500"``,
``"404"`` -- after which requests succeed. Successful answers honour ``Range: bytes=N-`` with a 206 unless the
route was added with ``honour_range=False``, with the route's ``content_type`` (if given) as Content-Type. Every
request's path and Range header is recorded.

Wrap :func:`serve` in a fixture of the test module (as test_download.py does) or import ``http_server``.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Route:
    body: bytes
    faults: list[str] = field(default_factory=list)
    honour_range: bool = True
    content_type: str | None = None


@dataclass
class Request:
    path: str
    range: str | None


class FileServer:
    """Registered payloads served over loopback HTTP, with scripted faults and a request log."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                with server._lock:
                    server.requests.append(Request(self.path, self.headers.get("Range")))
                    route = server.routes.get(self.path)
                    fault = route.faults.pop(0) if route and route.faults else None
                if route is None or fault == "404":
                    self.send_error(404, "Not Found")
                elif fault == "500":
                    self.send_error(500, "Internal Server Error")
                elif fault == "truncate":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(route.body)))
                    self.end_headers()
                    self.wfile.write(route.body[: len(route.body) // 2])
                    self.close_connection = True
                else:
                    self._send_ok(route)

            def _send_ok(self, route: Route) -> None:
                start = _range_start(self.headers.get("Range"))
                total = len(route.body)
                if route.honour_range and start is not None and start < total:
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{total - 1}/{total}")
                    body = route.body[start:]
                else:
                    self.send_response(200)
                    body = route.body
                if route.content_type:
                    self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def add(
        self,
        path: str,
        body: bytes,
        *,
        faults: list[str] | None = None,
        honour_range: bool = True,
        content_type: str | None = None,
    ) -> str:
        """Serve ``body`` at ``path`` (e.g. ``"/data/x.bin"``); returns the full URL."""
        self.routes[path] = Route(body, list(faults or []), honour_range, content_type)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def requests_for(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def start(self) -> FileServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


def _range_start(header: str | None) -> int | None:
    if not header or not header.startswith("bytes=") or not header.endswith("-"):
        return None
    try:
        return int(header[len("bytes=") : -1])
    except ValueError:
        return None


@contextlib.contextmanager
def serve():
    """Run a :class:`FileServer` for the duration of a ``with`` block."""
    server = FileServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def http_server():
    """A running :class:`FileServer` on 127.0.0.1, stopped after the test."""
    with serve() as server:
        yield server
