"""remote.py: a service's /lockdep document as a graph for `python -m lockdep merge`."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import lockdep
from lockdep import persist, remote
from lockdep.__main__ import main


class Served:
    """A loopback HTTP server answering every GET with ``body`` and ``status``."""

    def __init__(self) -> None:
        self.body = b"{}"
        self.status = 200
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(served.status)
                self.send_header("Content-Length", str(len(served.body)))
                self.end_headers()
                self.wfile.write(served.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/lockdep"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(30)
        self.server.server_close()


@pytest.fixture
def served() -> Iterator[Served]:
    s = Served()
    try:
        yield s
    finally:
        s.close()


def learn(first: lockdep.Mutex, second: lockdep.Mutex) -> dict[str, object]:
    with first, second:
        pass
    return lockdep.graph()


def test_a_graph_served_over_http_loads_as_a_saved_graph(served: Served) -> None:
    a, b = lockdep.Mutex("remote_a"), lockdep.Mutex("remote_b")
    served.body = json.dumps(learn(a, b)).encode()
    graph = remote.load_url(served.url)
    assert graph["format"] == persist.FORMAT and {"remote_a", "remote_b"} <= set(graph["classes"])
    (edge,) = [e for e in graph["edges"] if (e["from"], e["to"]) == ("remote_a", "remote_b")]
    assert edge["run"] == served.url


def test_merge_finds_a_cycle_across_a_url_and_a_file(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = lockdep.Mutex("remote_a"), lockdep.Mutex("remote_b")
    served.body = json.dumps(learn(a, b)).encode()  # one replica: a then b
    lockdep.reset()
    other = {"format": persist.FORMAT, "version": persist.VERSION, "classes": [], "edges": []}
    other["edges"] = [
        {"from": "remote_b", "from_subclass": 0, "to": "remote_a", "to_subclass": 0}
    ]  # the other: b then a
    path = f"{tmp_path}/other.json"
    with open(path, "w") as f:
        json.dump(other, f)
    assert main(["merge", served.url]) == 0
    assert main(["merge", served.url, path]) == 1
    out = capsys.readouterr().out
    assert "cycle 1: remote_a -> remote_b -> remote_a" in out or (
        "cycle 1: remote_b -> remote_a -> remote_b" in out
    )
    assert f"first seen in {served.url}" in out


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (200, b"<html>", "not JSON"),
        (200, b"[]", 'not a lockdep document (no "edges" list)'),
        (200, b'{"edges": [{"from": 1}]}', "edges[0] is malformed"),
        (404, b"nope", "HTTP 404"),
    ],
    ids=["html", "list", "edge", "404"],
)
def test_a_bad_answer_is_a_clear_error(
    served: Served, capsys: pytest.CaptureFixture[str], status: int, body: bytes, message: str
) -> None:
    served.status, served.body = status, body
    assert main(["merge", served.url]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lockdep merge: {served.url}: ") and message in err


def test_an_unreachable_service_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the test runs: nothing listens there
    url = f"http://127.0.0.1:{port}/lockdep"
    assert main(["merge", url]) == 2
    assert f"lockdep merge: {url}: cannot fetch: " in capsys.readouterr().err
