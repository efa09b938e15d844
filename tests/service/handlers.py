"""Handlers and a producer for the service tests, importable as ``tests.service.handlers``
(by the service under test, in this process or in a subprocess with the repository on
its path)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from threadpool import TPHandle

if TYPE_CHECKING:
    from threadpool.service.producers import ProducerContext

# Items seen by `collect`, for in-process tests.
SEEN: list[Any] = []
SEEN_LOCK = threading.Lock()


def noop(item: Any, handle: TPHandle) -> None:
    pass


def collect(item: Any, handle: TPHandle) -> None:
    with SEEN_LOCK:
        SEEN.append(item)


def fail(item: Any, handle: TPHandle) -> None:
    raise ValueError(f"fail() refuses {item!r}")


NOT_CALLABLE = 42


def shard_key(item: Any) -> Any:
    """The key of an item of a sharded queue: ``item[0]`` of a ``(key, value)`` pair."""
    return item[0]


@dataclass
class Tick:
    number: int
    stall_file: str | None


def tick(item: Tick, handle: TPHandle) -> None:
    """Stalls while the item's stall file exists (polled; at most 60 s)."""
    if item.stall_file is None:
        return
    stop = threading.Event()
    for _ in range(1200):
        if not os.path.exists(item.stall_file):
            return
        stop.wait(0.05)


class Ticker:
    """A producer queueing a Tick every `interval` seconds to settings pool/queue."""

    def __init__(self, settings: dict[str, Any], *, base_dir: Path) -> None:
        unknown = set(settings) - {"pool", "queue", "interval", "stall_file"}
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        self.pool = settings.get("pool", "main")
        self.queue = settings.get("queue", "ticks")
        self.interval = float(settings.get("interval", 0.02))
        stall = settings.get("stall_file")
        self.stall_file = str(base_dir / stall) if stall else None

    def run(self, ctx: ProducerContext) -> None:
        n = 0
        while not ctx.wait(self.interval):
            n += 1
            ctx.submit(self.pool, self.queue, Tick(n, self.stall_file))


class Broken:
    """A producer whose run() raises at once."""

    def __init__(self, settings: dict[str, Any], *, base_dir: Path) -> None:
        pass

    def run(self, ctx: ProducerContext) -> None:
        raise RuntimeError("Broken.run fails")


def no_run(settings: dict[str, Any], *, base_dir: Path) -> object:
    return object()


def release(item: threading.Event, handle: TPHandle) -> None:
    """Items that are threading.Events: set them (the test waits on them)."""
    item.set()


def release_all(items: list[threading.Event], handle: TPHandle) -> None:
    for item in items:
        item.set()


@dataclass
class Gate:
    """An item that says when its processing started and waits to be let go (bounded)."""

    started: threading.Event
    go: threading.Event

    @classmethod
    def new(cls) -> Gate:
        return cls(threading.Event(), threading.Event())


def stuck_forever(item: Any, handle: TPHandle) -> None:
    """Never returns (for subprocess tests: the process is killed around it)."""
    threading.Event().wait()


def hold(item: Gate, handle: TPHandle) -> None:
    item.started.set()
    item.go.wait(60)


class Once:
    """A producer that queues ``settings["times"]`` items (default 1) to each of
    ``settings["send"]`` (``[pool, queue]`` pairs), in order, then waits to be stopped."""

    def __init__(self, settings: dict[str, Any], *, base_dir: Path) -> None:
        self.send = [tuple(target) for target in settings["send"]]
        self.times = int(settings.get("times", 1))

    def run(self, ctx: ProducerContext) -> None:
        n = 0
        for pool, queue in self.send:
            for _ in range(self.times):
                ctx.submit(pool, queue, n)
                n += 1
        ctx.wait(3600)


# Items handed to on_drop / on_expire, for in-process tests.
DROPPED: list[Any] = []
EXPIRED: list[Any] = []


def dropped(item: Any) -> None:
    with SEEN_LOCK:
        DROPPED.append(item)


def expired(item: Any) -> None:
    with SEEN_LOCK:
        EXPIRED.append(item)


class KeyOrder:
    """What ``in_key_order`` saw: each key's values in the order processed, and whether
    two items of one key were ever processed at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[Any, list[Any]] = {}
        self.running: set[Any] = set()
        self.overlaps = 0


KEY_ORDER = KeyOrder()


def in_key_order(item: tuple[Any, Any], handle: TPHandle) -> None:
    """Items ``(key, value)`` of a sharded queue: recorded per key, overlaps counted."""
    key, value = item
    order = KEY_ORDER
    with order.lock:
        if key in order.running:
            order.overlaps += 1
        order.running.add(key)
    threading.Event().wait(0.0005)  # a moment for another item of the key to overlap
    with order.lock:
        order.values.setdefault(key, []).append(value)
        order.running.discard(key)


class Caller:
    """A producer that calls ``pow(2, n)`` for n in 0..9 through the executor of
    ``settings["pool"]``/``settings["queue"]`` and puts the results in ``RESULTS``."""

    def __init__(self, settings: dict[str, Any], *, base_dir: Path) -> None:
        self.pool = settings["pool"]
        self.queue = settings["queue"]

    def run(self, ctx: ProducerContext) -> None:
        executor = ctx.executor(self.pool, self.queue)
        futures = [executor.submit(pow, 2, n) for n in range(10)]
        RESULTS.extend(f.result(timeout=60) for f in futures)
        RESULTS_DONE.set()
        ctx.wait(3600)


RESULTS: list[Any] = []
RESULTS_DONE = threading.Event()
