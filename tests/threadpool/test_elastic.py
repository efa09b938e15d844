"""Elastic sizing in the pool (GlusterFS syncenv, SPEC 4.4): grow when an item finds no
free worker, never above the maximum; idle workers exit above the minimum; switching
between fixed and elastic sizing at run time; no item lost or doubled meanwhile."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from threadpool import BatchWorkQueue, PointerWQ, ThreadPool, WorkQueue, WorkQueueVal

from .conftest import JOIN, Harness, join, wait


class Blocker:
    """A process step that blocks until released and counts the items in it."""

    def __init__(self, tp: Harness) -> None:
        self.release = tp.gate()
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.seen: list[Any] = []
        self.reached: dict[int, threading.Event] = {}

    def at(self, n: int) -> threading.Event:
        """An event set once n items are (or have been) in their process step at once."""
        with self.lock:
            event = self.reached.setdefault(n, threading.Event())
            if self.most >= n:
                event.set()
        return event

    def __call__(self, item: Any, handle: object) -> None:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            if self.running in self.reached:
                self.reached[self.running].set()
        assert self.release.wait(JOIN)
        with self.lock:
            self.running -= 1
            self.seen.append(item)


def test_a_burst_grows_the_pool_to_max_threads_and_no_further(tp: Harness) -> None:
    blocker = Blocker(tp)
    pool = tp.pool("burst", 1, max_threads=4, min_threads=1)
    q = WorkQueueVal("q", process=blocker)
    pool.add_work_queue(q)
    pool.start()
    for i in range(20):
        q.queue(i)
    wait(blocker.at(4), "four items in process at once")
    # Growth is decided in queue() itself, with the pool lock: the target is final here.
    stats = pool.stats()
    assert stats["threads_target"] == 4 and stats["elastic"] and stats["max_threads"] == 4
    assert pool.wait_for_threads(count=4, timeout=JOIN)
    blocker.release.set()
    assert pool.drain(timeout=JOIN)
    assert blocker.most == 4
    assert sorted(blocker.seen) == list(range(20))
    assert pool.stats()["threads_target"] <= 4


def test_an_item_with_a_free_worker_does_not_grow_the_pool(tp: Harness) -> None:
    pool = tp.pool("calm", 2, max_threads=8)
    done = threading.Event()
    q = WorkQueueVal("q", process=lambda item, handle: done.set())
    pool.add_work_queue(q)
    pool.start()
    assert pool.wait_for_threads(timeout=JOIN)
    q.queue(1)
    wait(done, "the item")
    assert pool.drain(timeout=JOIN)
    assert pool.stats()["threads_target"] == 2


def test_idle_workers_above_the_minimum_exit_within_idle_timeout_plus_one_wait(
    tp: Harness,
) -> None:
    blocker = Blocker(tp)
    # idle_wait far longer than the test may wait: only the idle timeout can end the sleeps
    pool = tp.pool("shrink", 1, max_threads=4, min_threads=1, idle_timeout=0.05, idle_wait=JOIN * 4)
    q = WorkQueueVal("q", process=blocker)
    pool.add_work_queue(q)
    pool.start()
    for i in range(4):
        q.queue(i)
    wait(blocker.at(4), "four items in process at once")
    blocker.release.set()
    assert pool.drain(timeout=JOIN)
    begin = time.monotonic()
    assert pool.wait_for_threads(count=1, timeout=JOIN), pool.stats()
    assert time.monotonic() - begin < 0.05 + JOIN  # idle_timeout plus one wait, generously
    stats = pool.stats()
    assert stats["threads"] == 1 and stats["threads_target"] == 1  # never below the minimum


def test_an_elastic_pool_may_shrink_to_zero_and_grows_back_for_an_item(tp: Harness) -> None:
    pool = tp.pool("zero", 2, max_threads=2, min_threads=0, idle_timeout=0.01)
    seen: list[int] = []
    q = WorkQueueVal("q", process=lambda item, handle: seen.append(item))
    pool.add_work_queue(q)
    pool.start()
    assert pool.wait_for_threads(count=0, timeout=JOIN)
    q.queue(7)
    assert pool.drain(timeout=JOIN)  # no "no threads" error: the item made one
    assert seen == [7]


def test_items_queued_before_start_or_while_paused_get_workers(tp: Harness) -> None:
    pool = tp.pool("backlog", 0, max_threads=3, min_threads=0, idle_timeout=JOIN)
    blocker = Blocker(tp)
    q = PointerWQ("q", process=blocker)
    pool.add_work_queue(q)
    for i in range(5):
        q.queue(i)
    pool.start()
    wait(blocker.at(3), "three workers started for the backlog")
    blocker.release.set()
    assert pool.drain(timeout=JOIN)
    pool.set_elastic(0, 3, 0.01)
    assert pool.wait_for_threads(count=0, timeout=JOIN)
    pool.pause_new()
    for i in range(5, 8):
        q.queue(i)
    pool.unpause()
    assert pool.drain(timeout=JOIN)
    assert sorted(blocker.seen) == list(range(8))


def test_switching_between_fixed_and_elastic_while_running(tp: Harness) -> None:
    blocker = Blocker(tp)
    pool = tp.pool("switch", 2)
    q = WorkQueueVal("q", process=blocker)
    pool.add_work_queue(q)
    pool.start()
    assert not pool.elastic and pool.max_threads is None
    pool.set_elastic(1, 3, idle_timeout=0.01)
    assert pool.elastic and (pool.min_threads, pool.max_threads) == (1, 3)
    for i in range(6):
        q.queue(i)
    wait(blocker.at(3), "three items in process at once")
    assert pool.stats()["threads_target"] == 3
    pool.set_num_threads(5)  # fixed again: grows at once, never shrinks for idleness
    assert not pool.elastic
    wait(blocker.at(5), "five items in process at once")
    blocker.release.set()
    assert pool.drain(timeout=JOIN)
    assert pool.wait_for_threads(count=5, timeout=JOIN)
    pool.set_elastic(2, 2)  # the idle timeout kept; the target clamped to the limits
    assert pool.idle_timeout == 0.01
    assert pool.wait_for_threads(count=2, timeout=JOIN)
    assert sorted(blocker.seen) == list(range(6))


def test_set_elastic_clamps_the_target_into_the_new_limits(tp: Harness) -> None:
    pool = tp.pool("clamp", 6)
    pool.start()
    pool.set_elastic(1, 3)
    assert pool.num_threads == 3
    pool.set_elastic(4, 8)
    assert pool.num_threads == 4
    assert pool.wait_for_threads(count=4, timeout=JOIN)


@pytest.mark.parametrize(
    ("kw", "error", "match"),
    [
        ({"max_threads": 0}, ValueError, "max_threads must be an int >= 1"),
        ({"max_threads": 2, "min_threads": 3}, ValueError, "min_threads must be 0..max_threads"),
        ({"max_threads": 2, "min_threads": -1}, ValueError, "min_threads must be 0..max_threads"),
        ({"min_threads": 1}, ValueError, "needs max_threads"),
        ({"max_threads": 2.5}, TypeError, "max_threads must be an int"),
        ({"max_threads": True}, TypeError, "max_threads must be an int"),
        ({"max_threads": 2, "idle_timeout": -1}, ValueError, "idle_timeout must be"),
        ({"idle_timeout": "x"}, TypeError, "idle_timeout must be"),
    ],
)
def test_bad_elastic_settings_are_refused(kw: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        ThreadPool("bad", 1, **kw)


def test_a_refused_set_elastic_leaves_the_sizing_unchanged(tp: Harness) -> None:
    pool = tp.pool("keep", 2, max_threads=4, idle_timeout=5)
    with pytest.raises(ValueError, match="min_threads must be"):
        pool.set_elastic(5, 4)
    with pytest.raises(ValueError, match="idle_timeout"):
        pool.set_elastic(1, 4, idle_timeout=-2)
    assert (pool.min_threads, pool.max_threads, pool.idle_timeout) == (2, 4, 5.0)


ITEMS = 1_000_000
LOCKED_ITEMS = 250_000  # the locked paths on a normal build: see test_stress
BURST = 50_000


@pytest.mark.slow
def test_a_million_items_through_bursts_and_pauses_with_threads_coming_and_going(
    tp: Harness, paths: str
) -> None:
    pool = tp.pool("waves", 1, max_threads=6, min_threads=0, idle_timeout=0.002, idle_wait=0.5)
    assert pool.locked_paths == (paths == "locked")
    items = ITEMS if paths == "gil" else LOCKED_ITEMS
    done: list[int] = []

    def one(item: int, handle: object) -> None:
        done.append(item)

    def many(items: list[int], handle: object) -> None:
        done.extend(items)

    queues: list[Any] = [
        WorkQueueVal("val", process=one),
        WorkQueue("ref", process=one),
        BatchWorkQueue("batch", process=many, batch_size=32),
        PointerWQ("ptr", process=one),
    ]
    for q in queues:
        pool.add_work_queue(q)
    pool.start()

    def produce(p: int, start: int) -> None:
        puts = [q.queue for q in queues]
        for n, item in enumerate(range(start + p, start + BURST, 2)):
            puts[n % 4](item)

    targets = set()
    for wave, start in enumerate(range(0, items, BURST)):
        paused = wave % 5 == 4  # now and then the pool is paused through a whole burst
        if paused:
            pool.pause_new()
        producers = [threading.Thread(target=produce, args=(p, start)) for p in (0, 1)]
        for t in producers:
            t.start()
        for t in producers:
            join(t)
        if paused:
            pool.unpause()
        assert pool.drain(timeout=JOIN * 2)
        targets.add(pool.stats()["threads_target"])
        assert pool.wait_for_threads(count=0, timeout=JOIN), "idle workers did not exit"
    assert max(targets) <= 6
    assert len(done) == items
    done.sort()
    assert done == list(range(items)), "an item was lost or processed twice"
    stats = pool.stats()["queues"]
    assert sum(s["processed"] for s in stats.values()) == items
