"""Stress, bounded in time: no item lost or doubled under resizing; no deadlock and no
lockdep violation under concurrent pause/unpause/drain/resize. Each runs twice: on the
lock-free hand-off, and on the locked paths of a free-threaded build (the ``paths``
fixture)."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import lockdep
from threadpool import BatchWorkQueue, PointerWQ, ThreadPool, WorkQueue, WorkQueueVal

from .conftest import JOIN, Harness, join

ITEMS = 1_000_000
PRODUCERS = 8
SIZES = [1, 6, 2, 8, 0, 3, 5, 4]
CHAOS_ITEMS = 300_000


def four_queues(sink: list[int]) -> list[Any]:
    """One queue of each kind, all recording what they process into sink."""

    def one(item: int, handle: object) -> None:
        sink.append(item)

    def many(items: list[int], handle: object) -> None:
        sink.extend(items)

    return [
        WorkQueueVal("val", process=one),
        WorkQueue("ref", process=one),
        BatchWorkQueue("batch", process=many, batch_size=64),
        PointerWQ("ptr", process=one),
    ]


def start_threads(targets: list[Callable[[], None]]) -> list[threading.Thread]:
    threads = [threading.Thread(target=t, name=f"stress {i}") for i, t in enumerate(targets)]
    for t in threads:
        t.start()
    return threads


def test_a_million_items_from_8_producers_each_processed_exactly_once(
    tp: Harness, paths: str
) -> None:
    pool = tp.pool("noloss", 4)
    assert pool.locked_paths == (paths == "locked")
    done: list[int] = []
    queues = four_queues(done)
    for q in queues:
        pool.add_work_queue(q)
    pool.start()
    resizes = itertools.cycle(SIZES)

    def producer(p: int) -> Callable[[], None]:
        def run() -> None:
            puts = [q.queue for q in queues]
            for n, item in enumerate(range(p, ITEMS, PRODUCERS)):
                puts[n % 4](item)
                if p == 0 and n % 10_000 == 0:
                    pool.set_num_threads(next(resizes))  # up and down, while queueing

        return run

    producers = start_threads([producer(p) for p in range(PRODUCERS)])
    for t in producers:
        join(t)
    pool.set_num_threads(4)
    assert pool.drain(timeout=120), "not drained"
    assert len(done) == ITEMS
    done.sort()
    assert done == list(range(ITEMS)), "an item was lost or processed twice"
    stats = pool.stats()["queues"]
    assert sum(s["processed"] for s in stats.values()) == ITEMS
    assert all(s["failed"] == 0 and s["items"] == 0 for s in stats.values())


def test_concurrent_pause_unpause_drain_resize_with_lockdep_on(
    tp: Harness, collected: list[lockdep.Violation], paths: str
) -> None:
    pool = tp.pool("chaos", 3)
    assert pool.locked_paths == (paths == "locked")
    done: list[int] = []
    queues = four_queues(done)
    for q in queues:
        pool.add_work_queue(q)
    pool.start()
    deadline = time.monotonic() + 4.0
    counter = itertools.count()
    queued: list[int] = []
    never_ends: list[str] = []

    def running() -> bool:
        return time.monotonic() < deadline

    def produce() -> None:
        rng = random.Random()
        while running() and len(queued) < CHAOS_ITEMS:
            item = next(counter)
            queued.append(item)
            rng.choice(queues).queue(item)

    def pause_unpause() -> None:
        while running():
            pool.pause()
            pool.unpause()

    def pause_new_unpause() -> None:
        while running():
            pool.pause_new()
            pool.stats()
            pool.unpause()

    def drain() -> None:
        rng = random.Random()
        while running():
            try:
                pool.drain(rng.choice([None, *queues]), timeout=0.05)
            except RuntimeError as exc:  # paused, or no threads, at that moment
                assert "would never end" in str(exc)
                never_ends.append(str(exc))

    def resize() -> None:
        rng = random.Random()
        while running():
            pool.set_num_threads(rng.randrange(0, 6))
            pool.wait_for_threads(timeout=0.01)

    def timeouts() -> None:
        rng = random.Random()
        while running():
            rng.choice(queues).timeout = rng.choice([1, 5, 30])

    workers = start_threads(
        [produce, produce, pause_unpause, pause_new_unpause, drain, drain, resize, timeouts]
    )
    for t in workers:
        join(t)
    pool.set_num_threads(3)
    assert not pool.paused
    assert pool.drain(timeout=JOIN * 2), "deadlocked or lost track of work"
    assert sorted(done) == sorted(queued), "an item was lost or processed twice"
    assert collected == [], f"lockdep violations: {[v.kind for v in collected]}"
    assert lockdep.stats()["violations"] == 0
    assert pool.stop() == {}
    assert isinstance(pool, ThreadPool)
