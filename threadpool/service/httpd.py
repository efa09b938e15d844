"""The service's HTTP listener: ``/metrics``, ``/health`` and ``/lockdep`` on one port.

* ``GET /metrics``: the registry in the format the client asks for (``Accept``:
  the Prometheus text format 0.0.4 by default, OpenMetrics when asked), gzipped
  when ``Accept-Encoding`` allows it: prometheus_client's own negotiation.
  The query string is ignored.
* ``GET /health``: 200 ``ok`` while no worker is past its grace; otherwise 503
  with the names of the unhealthy workers, one a line.
* ``GET /lockdep``: JSON with lockdep's ``settings``, ``stats``, ``classes``,
  ``edges`` (each with the sites where it was first seen), ``held_locks`` (per
  thread) and ``violations`` (each distinct one, with its report).

HEAD works wherever GET does; other methods get 405, unknown paths 404, and a
malformed or oversized request a 4xx from ``http.server`` (400, 414, 431);
the connection is closed after each response. Each connection has a thread
of its own, so scrapes run concurrently, and a socket timeout keeps a client
that stops sending from holding its thread. An error while building a
response is logged and answered with 500; the listener goes on.

The listen backlog is ``BACKLOG`` (1024; the kernel caps it at
``net.core.somaxconn``), not the standard library's 5: a burst of thousands
of connections at once (a scrape storm, a load balancer's health checks) is
queued by the kernel and answered, instead of having its SYNs dropped and
retried a second or more later.

``HTTPService(host, port, ...)`` binds at once, so that a port in use is
found before anything else starts (``ListenError``); ``start()`` serves on a
background thread and ``close()`` stops serving and joins the threads.
"""

from __future__ import annotations

import errno
import gzip
import json
import logging
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, gzip_accepted

import lockdep

logger = logging.getLogger("threadpool.http")

REQUEST_TIMEOUT = 5.0  # seconds a client may take to send its request
BACKLOG = 1024  # connections the kernel queues before the accept loop takes them
POLL = 0.1  # seconds: how soon close() stops the accept loop
METHODS = ("GET", "HEAD")


class ListenError(Exception):
    """The listener could not bind its address; the message says why and what to do."""


def lockdep_document() -> dict[str, Any]:
    """What ``/lockdep`` serves (JSON-serialisable)."""
    settings = lockdep.settings()
    response = settings["on_violation"]
    if not isinstance(response, str):
        settings["on_violation"] = getattr(response, "__qualname__", repr(response))
    graph = lockdep.graph()
    return {
        "settings": settings,
        "stats": lockdep.stats(),
        "classes": graph["classes"],
        "edges": graph["edges"],
        "held_locks": {
            thread: [h.as_dict() for h in held] for thread, held in lockdep.all_held_locks().items()
        },
        "violations": [v.as_dict() for v in lockdep.violations()],
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # request threads are joined by server_close()
    block_on_close = True
    allow_reuse_address = True
    request_queue_size = BACKLOG

    registry: CollectorRegistry
    unhealthy: Callable[[], list[str]]

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.exception("request from %s failed", client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"
    default_request_version = "HTTP/1.0"  # so that an error always has a status line
    server_version = "threadpool"
    timeout = REQUEST_TIMEOUT

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False  # 400/431/505 sent
        if self.command not in METHODS:
            self._send(
                HTTPStatus.METHOD_NOT_ALLOWED,
                f"method {self.command} not allowed; use GET\n".encode(),
                "text/plain; charset=utf-8",
                {"Allow": ", ".join(METHODS)},
            )
            return False
        return True

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        try:
            if path == "/metrics":
                self._metrics()
            elif path == "/health":
                names = self.server.unhealthy()
                if names:
                    body = "".join(f"{name}\n" for name in names).encode()
                    self._send(HTTPStatus.SERVICE_UNAVAILABLE, body, "text/plain; charset=utf-8")
                else:
                    self._send(HTTPStatus.OK, b"ok\n", "text/plain; charset=utf-8")
            elif path == "/lockdep":
                body = json.dumps(lockdep_document(), indent=1).encode()
                self._send(HTTPStatus.OK, body, "application/json")
            else:
                self._send(
                    HTTPStatus.NOT_FOUND,
                    b"not found; try /metrics, /health or /lockdep\n",
                    "text/plain; charset=utf-8",
                )
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client left
        except Exception:
            logger.exception("GET %s failed", path)
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, b"internal error\n", "text/plain")

    def do_HEAD(self) -> None:
        self.do_GET()

    def _metrics(self) -> None:
        """The exposition as prometheus_client serves it: the format by ``Accept``,
        gzip by ``Accept-Encoding``."""
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        body = encoder(self.server.registry)
        headers = {"Vary": "Accept, Accept-Encoding"}
        if gzip_accepted(self.headers.get("Accept-Encoding", "")):
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        self._send(HTTPStatus.OK, body, content_type, headers)

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


class HTTPService:
    """The listener; see the module docstring. ``unhealthy()`` returns the names of
    the unhealthy workers (empty while healthy)."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        unhealthy: Callable[[], list[str]],
    ) -> None:
        server_class = _Server
        if ":" in host:
            server_class = _Server6
        try:
            self._server = server_class((host, port), _Handler)
        except OSError as exc:
            why = exc.strerror or str(exc)
            hint = ""
            if exc.errno == errno.EADDRINUSE:
                hint = "; another process listens there: stop it or change service.port"
            elif exc.errno == errno.EADDRNOTAVAIL:
                hint = "; no interface has that address: change service.listen"
            elif exc.errno == errno.EACCES:
                hint = "; ports below 1024 need privileges: change service.port"
            raise ListenError(f"cannot listen on {_url(host, port)}: {why}{hint}") from None
        self._server.registry = registry
        self._server.unhealthy = unhealthy
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        return _url(*self.address)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": POLL}, name="http listener"
        )
        self._thread.start()
        logger.info("serving %s/metrics, /health and /lockdep", self.url)

    def close(self) -> None:
        """Stop accepting, wait for the requests in progress, release the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()


class _Server6(_Server):
    address_family = socket.AF_INET6


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
