"""A burst of simultaneous HTTP connections from one thread (non-blocking sockets and a
selector): what a scrape storm or a load balancer's health checks do to a listener.
Used by the listener's tests and by ``benchmarks/connect_burst.py``."""

from __future__ import annotations

import errno
import selectors
import socket
from dataclasses import dataclass, field
from time import monotonic


@dataclass
class BurstResult:
    clients: int
    statuses: dict[int, int] = field(default_factory=dict)  # HTTP status -> responses
    errors: dict[str, int] = field(default_factory=dict)  # what went wrong -> clients
    seconds: float = 0.0  # from the first connect to the last response (or the deadline)

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    def count_error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


def burst(
    host: str, port: int, clients: int, path: str = "/health", timeout: float = 60.0
) -> BurstResult:
    """Open ``clients`` connections at once, send one GET each, and read the answers;
    give up on what is left after ``timeout`` seconds."""
    result = BurstResult(clients)
    request = f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode()
    sel = selectors.DefaultSelector()
    replies: dict[socket.socket, bytearray] = {}
    start = monotonic()
    try:
        for _ in range(clients):
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            sock.setblocking(False)
            code = sock.connect_ex((host, port))
            if code not in (0, errno.EINPROGRESS):
                result.count_error(errno.errorcode.get(code, str(code)))
                sock.close()
                continue
            sel.register(sock, selectors.EVENT_WRITE)
        deadline = start + timeout
        while sel.get_map():
            left = deadline - monotonic()
            if left <= 0:
                break
            for key, events in sel.select(min(left, 1.0)):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if events & selectors.EVENT_WRITE:
                    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if code:
                        _finish(sel, sock, replies, result, errno.errorcode.get(code, str(code)))
                        continue
                    sock.send(request)  # a few dozen bytes: the send buffer takes them whole
                    replies[sock] = bytearray()
                    sel.modify(sock, selectors.EVENT_READ)
                else:
                    try:
                        chunk = sock.recv(65536)
                    except ConnectionError as exc:
                        _finish(sel, sock, replies, result, type(exc).__name__)
                        continue
                    if chunk:
                        replies[sock] += chunk
                    else:
                        _finish(sel, sock, replies, result, None)
        result.seconds = monotonic() - start
        for key in list(sel.get_map().values()):
            _finish(sel, key.fileobj, replies, result, "no answer in time")  # type: ignore[arg-type]
    finally:
        sel.close()
    return result


def _finish(
    sel: selectors.BaseSelector,
    sock: socket.socket,
    replies: dict[socket.socket, bytearray],
    result: BurstResult,
    error: str | None,
) -> None:
    sel.unregister(sock)
    reply = bytes(replies.pop(sock, b""))
    sock.close()
    if error is None and reply.startswith(b"HTTP/"):
        status = int(reply.split(b" ", 2)[1])
        result.statuses[status] = result.statuses.get(status, 0) + 1
    else:
        result.count_error(error or "closed without an answer")
