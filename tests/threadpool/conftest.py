"""Fixtures for the threadpool tests: pools that are always stopped, gates that are
always opened, and a clock the test moves by hand."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from threadpool import HeartbeatMap, ThreadPool, freethreading

JOIN = 30.0  # seconds: the most any test waits for a thread or an event


class FakeClock:
    """A monotonic clock that only moves when the test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Harness:
    """Makes pools, heartbeat maps and gates, and tears them all down after the test:
    gates are opened first (so that no worker stays blocked), then pools stopped
    (which joins their workers), then checkers stopped."""

    def __init__(self) -> None:
        self.pools: list[ThreadPool] = []
        self.maps: list[HeartbeatMap] = []
        self.gates: list[threading.Event] = []

    def pool(self, name: str = "tp", num_threads: int = 2, **kw: Any) -> ThreadPool:
        pool = ThreadPool(name, num_threads, **kw)
        self.pools.append(pool)
        return pool

    def hb_map(self, name: str = "hb", **kw: Any) -> HeartbeatMap:
        hb = HeartbeatMap(name, **kw)
        self.maps.append(hb)
        return hb

    def gate(self) -> threading.Event:
        gate = threading.Event()
        self.gates.append(gate)
        return gate

    def close(self) -> None:
        for gate in self.gates:
            gate.set()
        for pool in self.pools:
            if pool.running:
                pool.stop()
        for hb in self.maps:
            hb.stop_checker(JOIN)


@pytest.fixture
def tp() -> Iterator[Harness]:
    harness = Harness()
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def wait(event: threading.Event, what: str) -> None:
    """Wait for an event a bounded time; fail the test naming what did not happen."""
    assert event.wait(JOIN), f"timed out waiting for {what}"


def join(thread: threading.Thread) -> None:
    thread.join(JOIN)
    assert not thread.is_alive(), f"thread {thread.name} did not finish"


@pytest.fixture(params=["gil", "locked"])
def paths(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test twice: pools on the lock-free hand-off this build allows, and pools
    forced onto the locked paths a free-threaded build takes (see freethreading)."""
    freethreading.use_locked_paths(True if request.param == "locked" else None)
    try:
        yield request.param
    finally:
        freethreading.use_locked_paths(None)
