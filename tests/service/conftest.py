"""Helpers for the service tests: configuration documents, an in-process service that is
always shut down, HTTP requests with timeouts, and polling with a deadline."""

from __future__ import annotations

import copy
import http.client
import logging
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from time import monotonic
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
import yaml

from threadpool.service.config import Config, load

if TYPE_CHECKING:
    from threadpool.service.service import Service

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 30.0  # seconds: the most a test waits for something to happen
T = TypeVar("T")

HANDLERS = "tests.service.handlers"

BASE: dict[str, Any] = {
    "service": {"listen": "127.0.0.1", "port": 0, "drain_timeout": 5},
    "heartbeat": {"interval": 0.1},
    "lockdep": {"on_violation": "log"},
    "pools": [
        {
            "name": "main",
            "threads": 2,
            "queues": [{"name": "ticks", "kind": "value", "handler": f"{HANDLERS}:noop"}],
        }
    ],
}


def doc(**changes: Any) -> dict[str, Any]:
    """A deep copy of BASE with top-level sections replaced."""
    out = copy.deepcopy(BASE)
    out.update(changes)
    return out


def write(path: Path, document: Any) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def poll(what: str, probe: Callable[[], T | None], timeout: float = DEADLINE) -> T:
    """Call ``probe`` until it returns something truthy (returned), or fail naming ``what``
    after ``timeout`` seconds. For conditions only observable from outside (a process, a
    server); waits between tries on an Event that is never set, never in a bare sleep."""
    end = monotonic() + timeout
    pause = __import__("threading").Event()
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if monotonic() > end:
            pytest.fail(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        pause.wait(0.05)


def request(
    url: str,
    path: str,
    method: str = "GET",
    timeout: float = 10.0,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request to ``url`` (http://host:port)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def raw_request(url: str, data: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes, return everything the server sends back before closing."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


@pytest.fixture
def root_level() -> Iterator[None]:
    """The root logger's level is put back (the service sets it from its configuration)."""
    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


class Services:
    """Starts in-process services (lockdep left to the test session) and shuts them down."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[Service] = []

    def config(self, document: Any, name: str = "config.yaml") -> Config:
        return load(write(self.tmp_path / name, document))

    def start(self, document: Any, manage_lockdep: bool = False) -> Service:
        from threadpool.service.service import Service

        service = Service(self.config(document), manage_lockdep=manage_lockdep)
        self.started.append(service)
        service.start()
        return service

    def close(self) -> None:
        for service in self.started:
            service.shutdown()


@pytest.fixture
def services(tmp_path: Path, root_level: None) -> Iterator[Services]:
    s = Services(tmp_path)
    try:
        yield s
    finally:
        s.close()


def binary(name: str) -> str:
    """The path of a Prometheus tool. Missing: the test fails when REQUIRE_PROMETHEUS is
    set (CI installs Debian's prometheus package), and is skipped otherwise."""
    import os
    import shutil

    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        message = f"{name} is not installed (Debian: apt-get install prometheus)"
        if os.environ.get("REQUIRE_PROMETHEUS"):
            pytest.fail(f"{message}, and REQUIRE_PROMETHEUS is set")
        pytest.skip(message)
    return path


def promtool_check(exposition: bytes) -> None:
    """`promtool check metrics` must report nothing about ``exposition``."""
    import subprocess

    result = subprocess.run(
        [binary("promtool"), "check", "metrics"],
        input=exposition,
        capture_output=True,
        timeout=60,
    )
    report = (result.stdout + result.stderr).decode()
    assert result.returncode == 0 and not report.strip(), report
