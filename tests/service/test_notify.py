"""notify.py: sd_notify datagrams to NOTIFY_SOCKET; the watchdog pings only while healthy."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from threadpool.service.notify import Notifier, Watchdog, watchdog_interval

from .conftest import DEADLINE


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    """A datagram socket standing in for systemd's notification socket."""
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(DEADLINE)
    try:
        yield path, sock
    finally:
        sock.close()


def test_ready_stopping_and_status_are_sent(manager: tuple[str, socket.socket]) -> None:
    path, sock = manager
    notifier = Notifier(path)
    assert notifier.enabled
    assert notifier.ready("serving http://127.0.0.1:1")
    assert sock.recv(4096) == b"READY=1\nSTATUS=serving http://127.0.0.1:1"
    assert notifier.status("reloaded")
    assert sock.recv(4096) == b"STATUS=reloaded"
    assert notifier.stopping("draining")
    assert sock.recv(4096) == b"STOPPING=1\nSTATUS=draining"


def test_abstract_namespace_address() -> None:
    name = f"threadpool-test-{uuid.uuid4()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(DEADLINE)
        assert Notifier("@" + name).send("READY=1")
        assert sock.recv(4096) == b"READY=1"


def test_without_notify_socket_nothing_is_sent() -> None:
    notifier = Notifier.from_environ({})
    assert not notifier.enabled and notifier.send("READY=1") is False


def test_unreachable_manager_is_logged_once_and_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier(str(tmp_path / "nobody"))
    with caplog.at_level(logging.WARNING, "threadpool.service"):
        assert notifier.send("READY=1") is False
        assert notifier.send("WATCHDOG=1") is False
    assert caplog.text.count("cannot notify the service manager") == 1


@pytest.mark.parametrize(
    ("environ", "interval"),
    [
        ({"WATCHDOG_USEC": "2000000"}, 1.0),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}, 1.0),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec(
    environ: dict[str, str], interval: float | None
) -> None:
    assert watchdog_interval(environ) == interval


def test_watchdog_pings_only_while_healthy(manager: tuple[str, socket.socket]) -> None:
    path, sock = manager
    calls = 0
    enough = threading.Event()

    def healthy() -> bool:
        nonlocal calls
        calls += 1
        if calls == 6:
            enough.set()
        return calls <= 3  # healthy three times, then never again

    dog = Watchdog(Notifier(path), 0.001, healthy)
    dog.start()
    try:
        assert enough.wait(DEADLINE)
    finally:
        dog.stop(DEADLINE)
    assert dog.pings == 3 and dog.skipped >= 3
    assert [sock.recv(64) for _ in range(3)] == [b"WATCHDOG=1"] * 3
    sock.settimeout(0)
    with pytest.raises(BlockingIOError):
        sock.recv(64)  # nothing more was sent


def test_watchdog_whose_health_check_raises_does_not_ping(
    manager: tuple[str, socket.socket], caplog: pytest.LogCaptureFixture
) -> None:
    path, sock = manager
    called = threading.Event()

    def broken() -> bool:
        called.set()
        raise RuntimeError("no idea")

    dog = Watchdog(Notifier(path), 60, broken)
    with caplog.at_level(logging.ERROR, "threadpool.service"):
        dog.start()
        assert called.wait(DEADLINE)
        dog.stop(DEADLINE)
    assert dog.pings == 0 and "the health check failed" in caplog.text
    sock.settimeout(0)
    with pytest.raises(BlockingIOError):
        sock.recv(64)
