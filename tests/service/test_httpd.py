"""httpd.py: /metrics, /health, /lockdep on one listener; bad requests get a 4xx and the
listener keeps serving; concurrent scrapes; a port in use is a clear error."""

from __future__ import annotations

import gzip
import json
import resource
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

import lockdep
from threadpool.service.httpd import BACKLOG, HTTPService, ListenError
from threadpool.service.metrics import LockdepCollector, registry

from .burst import burst
from .conftest import DEADLINE, raw_request, request, status_of


class Gauges:
    """A collector with many series, and one that can be made to fail."""

    def __init__(self) -> None:
        self.fail = False

    def collect(self) -> Iterator[Any]:
        if self.fail:
            raise RuntimeError("collector broken")
        family = GaugeMetricFamily("test_gauge", "A test gauge.", labels=["n"])
        for n in range(200):
            family.add_metric([str(n)], n)
        yield family


class Listener:
    def __init__(self) -> None:
        self.gauges = Gauges()
        self.unhealthy: list[str] = []
        self.service = HTTPService(
            "127.0.0.1",
            0,
            registry(self.gauges, LockdepCollector(), process=False),
            lambda: list(self.unhealthy),
        )
        self.url = self.service.url


@pytest.fixture
def listener() -> Iterator[Listener]:
    ls = Listener()
    ls.service.start()
    try:
        yield ls
    finally:
        ls.service.close()


def healthy_still(listener: Listener) -> None:
    status, _, body = request(listener.url, "/health")
    assert (status, body) == (200, b"ok\n")


def test_metrics_serves_the_registry_in_the_text_format(listener: Listener) -> None:
    status, headers, body = request(listener.url, "/metrics")
    assert status == 200 and headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert b'test_gauge{n="199"} 199.0' in body and b"lockdep_enabled 1.0" in body
    assert int(headers["Content-Length"]) == len(body)
    assert "Content-Encoding" not in headers


def test_metrics_are_gzipped_when_the_client_accepts_it(listener: Listener) -> None:
    plain = request(listener.url, "/metrics")[2]
    status, headers, body = request(
        listener.url, "/metrics", headers={"Accept-Encoding": "deflate, gzip;q=0.9"}
    )
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert int(headers["Content-Length"]) == len(body) < len(plain)
    assert gzip.decompress(body) == plain


def test_metrics_speak_openmetrics_when_asked(listener: Listener) -> None:
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    status, headers, body = request(listener.url, "/metrics", headers={"Accept": accept})
    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith(b"# EOF\n") and b'test_gauge{n="199"} 199.0' in body
    assert "Accept" in headers["Vary"]


def test_query_string_is_ignored(listener: Listener) -> None:
    status, _, body = request(listener.url, "/metrics?name[]=x")
    assert status == 200 and b"test_gauge" in body


def test_head_answers_headers_without_a_body(listener: Listener) -> None:
    status, headers, body = request(listener.url, "/metrics", "HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


def test_health_is_ok_then_lists_unhealthy_workers_one_a_line(listener: Listener) -> None:
    healthy_still(listener)
    listener.unhealthy[:] = ["main thread 0", "main thread 3"]
    status, headers, body = request(listener.url, "/health")
    assert status == 503 and body == b"main thread 0\nmain thread 3\n"
    assert headers["Content-Type"].startswith("text/plain")


def test_lockdep_serves_graph_held_locks_and_violations(
    listener: Listener, collected: list[lockdep.Violation]
) -> None:
    a, b = lockdep.Mutex("httpd_a"), lockdep.Mutex("httpd_b")
    with a, b:
        pass
    with b, a:
        pass
    holding, done = threading.Event(), threading.Event()

    def hold() -> None:
        with a:
            holding.set()
            done.wait(DEADLINE)

    holder = threading.Thread(target=hold, name="holder")
    holder.start()
    try:
        assert holding.wait(DEADLINE)
        status, headers, body = request(listener.url, "/lockdep")
    finally:
        done.set()
        holder.join(DEADLINE)
    assert status == 200 and headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert {"settings", "stats", "classes", "edges", "held_locks", "violations"} <= set(doc)
    assert {"httpd_a", "httpd_b"} <= {c["name"] for c in doc["classes"]}
    (edge,) = [e for e in doc["edges"] if (e["from"], e["to"]) == ("httpd_a", "httpd_b")]
    assert "test_httpd.py" in edge["from_site"] and "test_httpd.py" in edge["to_site"]
    assert [h["class"] for h in doc["held_locks"]["holder"]] == ["httpd_a"]
    (violation,) = doc["violations"]
    assert violation["kind"] == "order" and "circular locking dependency" in violation["report"]
    assert doc["settings"]["on_violation"] == "list.append"  # a callable, named


def test_unknown_path_is_404(listener: Listener) -> None:
    status, _, body = request(listener.url, "/nope")
    assert status == 404 and b"/metrics" in body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "BREW"])
def test_other_methods_get_405_with_allow(listener: Listener, method: str) -> None:
    status, headers, _ = request(listener.url, "/metrics", method)
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    healthy_still(listener)


BAD = [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1 extra\r\n\r\n", 400),
    (b"GET /metrics HTTP/x.y\r\n\r\n", 400),
    (b"\x00\xff\xfe binary \x01\r\n\r\n", 400),
    (b"GET /" + b"a" * 70000 + b" HTTP/1.0\r\n\r\n", 414),
    (b"GET / HTTP/1.0\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(150)) + b"\r\n", 431),
    (b"GET / HTTP/1.0\r\nX-Big: " + b"y" * 70000 + b"\r\n\r\n", 431),
]


@pytest.mark.parametrize(
    ("data", "expected"), BAD, ids=["word", "extra", "version", "binary", "uri", "many", "long"]
)
def test_malformed_or_huge_request_gets_4xx_and_serving_goes_on(
    listener: Listener, data: bytes, expected: int
) -> None:
    assert status_of(raw_request(listener.url, data)) == expected
    healthy_still(listener)


def test_a_client_that_sends_nothing_does_not_hold_up_others(listener: Listener) -> None:
    host, port = listener.service.address
    with socket.create_connection((host, port), timeout=DEADLINE):
        healthy_still(listener)  # served on another thread meanwhile


@pytest.mark.slow
def test_concurrent_scrapes_are_all_served_whole(listener: Listener) -> None:
    results: list[tuple[int, int, int]] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def scrape() -> None:
        start.wait(DEADLINE)
        for _ in range(5):
            status, headers, body = request(listener.url, "/metrics")
            with lock:
                results.append((status, int(headers["Content-Length"]), len(body)))

    threads = [threading.Thread(target=scrape) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
    assert not any(t.is_alive() for t in threads)
    assert len(results) == 40
    assert all(status == 200 and length == size > 0 for status, length, size in results)


@pytest.mark.slow
def test_a_burst_of_2000_simultaneous_connections_is_answered_whole(listener: Listener) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 4 * 2000 + 256  # both ends of every connection, with room
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    try:
        host, port = listener.service.address
        result = burst(host, port, 2000, "/health", timeout=DEADLINE)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    # With the standard library's backlog of 5, about 400 were answered in 30 s: the
    # kernel dropped the other SYNs and the clients retried them seconds later.
    assert result.statuses == {200: 2000}, (result.statuses, result.errors, result.seconds)


def test_listen_backlog_is_1024() -> None:
    service = HTTPService("127.0.0.1", 0, CollectorRegistry(), list)
    try:
        assert service._server.request_queue_size == BACKLOG == 1024
    finally:
        service.close()


def test_a_failing_collector_gets_500_and_serving_goes_on(listener: Listener) -> None:
    listener.gauges.fail = True
    status, _, _ = request(listener.url, "/metrics")
    assert status == 500
    listener.gauges.fail = False
    assert request(listener.url, "/metrics")[0] == 200


def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ListenError) as info:
            HTTPService("127.0.0.1", port, CollectorRegistry(), list)
    message = str(info.value)
    assert message.startswith(f"cannot listen on http://127.0.0.1:{port}: Address already in use")
    assert "another process listens there: stop it or change service.port" in message


def test_address_of_no_interface_is_a_clear_error() -> None:
    with pytest.raises(ListenError, match=r"192\.0\.2\.1.*no interface has that address"):
        HTTPService("192.0.2.1", 0, CollectorRegistry(), list)


def test_close_releases_the_port() -> None:
    first = HTTPService("127.0.0.1", 0, CollectorRegistry(), list)
    first.start()
    port = first.address[1]
    first.close()
    again = HTTPService("127.0.0.1", port, CollectorRegistry(), list)
    again.close()


def test_ipv6_loopback_is_served() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        service = HTTPService("::1", 0, CollectorRegistry(), list)
    except ListenError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    service.start()
    try:
        assert service.url.startswith("http://[::1]:")
        assert request(service.url, "/health")[0] == 200
    finally:
        service.close()
