"""Stress, bounded in time: no item lost or doubled under resizing, nor through bounds,
deadlines and elastic sizing; no deadlock and no lockdep violation under concurrent
pause/unpause/drain/resize. Each runs twice: on the
lock-free hand-off, and on the locked paths of a free-threaded build (the ``paths``
fixture)."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import lockdep
from threadpool import BatchWorkQueue, PointerWQ, QueueFull, ThreadPool, WorkQueue, WorkQueueVal

from .conftest import JOIN, Harness, join

pytestmark = pytest.mark.slow  # stress

ITEMS = 1_000_000
# On a normal build the locked paths of a free-threaded one queue every producer on the
# pool lock, a thread switch per item under the GIL: a quarter of the items shows the same.
LOCKED_ITEMS = 250_000
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
    items = ITEMS if paths == "gil" else LOCKED_ITEMS
    done: list[int] = []
    queues = four_queues(done)
    for q in queues:
        pool.add_work_queue(q)
    pool.start()
    resizes = itertools.cycle(SIZES)

    def producer(p: int) -> Callable[[], None]:
        def run() -> None:
            puts = [q.queue for q in queues]
            for n, item in enumerate(range(p, items, PRODUCERS)):
                puts[n % 4](item)
                if p == 0 and n % 10_000 == 0:
                    pool.set_num_threads(next(resizes))  # up and down, while queueing

        return run

    producers = start_threads([producer(p) for p in range(PRODUCERS)])
    for t in producers:
        join(t)
    pool.set_num_threads(4)
    assert pool.drain(timeout=120), "not drained"
    assert len(done) == items
    done.sort()
    assert done == list(range(items)), "an item was lost or processed twice"
    stats = pool.stats()["queues"]
    assert sum(s["processed"] for s in stats.values()) == items
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


OFFERED = 100_000


def test_no_item_lost_or_doubled_through_bounds_deadlines_and_elastic_sizing(
    tp: Harness, paths: str
) -> None:
    """Every item queued ends in exactly one of: processed (some of them failed),
    rejected, dropped, expired, left at stop; and the counters say the same."""
    pool = tp.pool("everything", 1, max_threads=4, min_threads=1, idle_timeout=0.005)
    assert pool.locked_paths == (paths == "locked")
    processed: list[int] = []
    failed: list[int] = []
    dropped: list[int] = []
    expired: list[int] = []
    rejected: list[int] = []

    def one(item: int, handle: object) -> None:
        processed.append(item)
        if item % 101 == 0:
            failed.append(item)
            raise ValueError(item)

    def many(items: list[int], handle: object) -> None:
        processed.extend(items)
        if any(item % 101 == 0 for item in items):
            failed.extend(items)
            raise ValueError(items)

    hooks: dict[str, Any] = {"on_drop": dropped.append, "on_expire": expired.append}
    queues: list[Any] = [
        WorkQueueVal("reject", process=one, max_items=50, deadlines=True, **hooks),
        PointerWQ("drop", process=one, max_items=50, policy="drop_oldest", deadline=0.5, **hooks),
        BatchWorkQueue(
            "callers",
            process=many,
            batch_size=8,
            max_items=100,
            policy="caller_runs",
            deadlines=True,
            **hooks,
        ),
        WorkQueue("block", process=one, max_items=20, policy="block", deadlines=True, **hooks),
    ]
    queues[3].block_timeout = 0.001
    for q in queues:
        pool.add_work_queue(q)
    pool.start()
    deadlines = [None, None, 0.0005, 60.0]

    def produce(p: int) -> None:
        rng = random.Random(p)
        for item in range(p, OFFERED, 4):
            q = queues[item % 4]
            deadline = deadlines[rng.randrange(4)] if q.name != "drop" else None
            try:
                q.queue(item, deadline=deadline)
            except QueueFull:
                rejected.append(item)

    stop_chaos = threading.Event()

    def chaos() -> None:
        rng = random.Random()
        while not stop_chaos.wait(0.001):
            pool.pause_new()
            pool.unpause()
            pool.set_elastic(rng.randrange(0, 3), rng.randrange(3, 6), 0.005)

    producers = start_threads([lambda p=p: produce(p) for p in range(4)] + [chaos])
    for t in producers[:4]:
        join(t)
    stop_chaos.set()
    join(producers[4])
    left = pool.stop(timeout=JOIN)
    assert left.stuck == []
    leftover = [item for items in left.values() for item in items]
    outcomes = [processed, rejected, dropped, expired, leftover]
    every = sorted(item for outcome in outcomes for item in outcome)
    assert every == list(range(OFFERED)), "an item was lost, or ended in two ways"
    stats = {name: q.stats() for name, q in zip("rpcb", queues, strict=True)}
    assert sum(s["processed"] for s in stats.values()) == len(processed)
    assert sum(s["failed"] for s in stats.values()) == len(failed)
    assert sum(s["rejected"] for s in stats.values()) == len(rejected)
    assert sum(s["dropped"] for s in stats.values()) == len(dropped)
    assert sum(s["expired"] for s in stats.values()) == len(expired)
    assert rejected and dropped and expired, "the run did not exercise every outcome"


DATED_ITEMS = 200_000


def test_unbounded_queues_with_deadlines_lose_nothing_and_never_process_the_expired(
    tp: Harness, paths: str
) -> None:
    """Producers queue without a lock into unbounded queues with deadlines (the queue's
    own, far ones and near ones per call), workers take them as they come: each item is
    processed or expired exactly once, and an item is processed only before its deadline."""
    pool = tp.pool("dated", 4)
    processed: list[int] = []
    late: list[int] = []
    expired: list[int] = []
    queued_at: dict[int, tuple[float, float]] = {}

    def one(item: int, handle: object) -> None:
        start, deadline = queued_at[item]
        if time.monotonic() > start + deadline + 1.0:  # taken long after its deadline
            late.append(item)
        processed.append(item)

    def many(items: list[int], handle: object) -> None:
        for item in items:
            one(item, handle)

    hooks: dict[str, Any] = {"on_expire": expired.append}
    queues: list[Any] = [
        WorkQueueVal("val", process=one, deadline=60.0, **hooks),
        WorkQueue("ref", process=one, deadlines=True, **hooks),
        PointerWQ("ptr", process=one, deadline=60.0, **hooks),
        BatchWorkQueue("batch", process=many, batch_size=16, deadline=60.0, **hooks),
    ]
    for q in queues:
        pool.add_work_queue(q)
    pool.start()
    choices = [None, None, None, 30.0, 0.0005]

    def produce(p: int) -> None:
        rng = random.Random(p)
        for item in range(p, DATED_ITEMS, PRODUCERS):
            q = queues[item % 4]
            deadline = choices[rng.randrange(5)]
            given = q.deadline if deadline is None else deadline
            queued_at[item] = (time.monotonic(), float("inf") if given is None else given)
            q.queue(item, deadline=deadline)

    producers = start_threads([lambda p=p: produce(p) for p in range(PRODUCERS)])
    for t in producers:
        join(t)
    for q in queues:
        assert pool.drain(q, timeout=JOIN)
    assert pool.stop(timeout=JOIN) == {}
    every = sorted(processed + expired)
    assert every == list(range(DATED_ITEMS)), "an item was lost, or ended in two ways"
    assert not set(processed) & set(expired)
    assert late == [], "items processed more than a second past their deadline"
    assert expired, "the run did not exercise expiry"
    assert sum(q.stats()["expired"] for q in queues) == len(expired)
