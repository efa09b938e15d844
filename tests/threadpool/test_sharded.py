"""ShardedWorkQueue (Ceph's ShardedOpWQ): items of one key one at a time and in order,
keys in parallel; a lockdep-named lock per shard; pause, drain and stop across shards;
resizing while items flow."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Hashable
from typing import Any

import pytest

import lockdep
from threadpool import ShardedWorkQueue

from .conftest import JOIN, Harness, join, wait

KEYS = 100
PER_KEY = 1_000
SHARDS = 8


class PerKey:
    """A process step that checks, inside the handler, that no two items of one key run
    at once and that each key's items come in the order queued."""

    def __init__(self) -> None:
        self.running: dict[Hashable, bool] = {}
        self.last: dict[Hashable, int] = {}
        self.overlaps: list[Hashable] = []
        self.disorder: list[tuple[Hashable, int, int]] = []
        self.count = itertools.count()
        self.seen: list[tuple[Hashable, int]] = []

    def __call__(self, item: tuple[Hashable, int], handle: object) -> None:
        key, n = item
        if self.running.get(key):
            self.overlaps.append(key)
        self.running[key] = True
        last = self.last.get(key, -1)
        if n != last + 1:
            self.disorder.append((key, last, n))
        self.last[key] = n
        self.seen.append(item)
        self.running[key] = False


def produce(q: ShardedWorkQueue, keys: range, per_key: int) -> Callable[[], None]:
    def run() -> None:
        for n in range(per_key):
            for key in keys:
                q.queue(key, (key, n))

    return run


@pytest.mark.slow
def test_per_key_order_and_one_at_a_time_100_keys_by_1000_items_over_8_shards(
    tp: Harness, paths: str
) -> None:
    check = PerKey()
    pool = tp.pool("sharded", 6)
    q = ShardedWorkQueue("ops", SHARDS, check)
    pool.add_work_queue(q)
    pool.start()
    producers = [threading.Thread(target=produce(q, range(p, KEYS, 4), PER_KEY)) for p in range(4)]
    for t in producers:
        t.start()
    for t in producers:
        join(t)
    assert pool.drain(timeout=JOIN * 2)
    assert check.overlaps == [], "two items of one key ran at once"
    assert check.disorder == [], "a key's items ran out of order"
    assert len(check.seen) == KEYS * PER_KEY
    assert sorted(check.seen) == sorted((k, n) for k in range(KEYS) for n in range(PER_KEY))
    stats = q.stats()
    assert stats["processed"] == KEYS * PER_KEY and stats["items"] == 0
    assert sum(s["processed"] for s in stats["shards"]) == KEYS * PER_KEY
    assert len(stats["shards"]) == SHARDS


def test_different_keys_run_in_parallel_one_key_does_not(tp: Harness) -> None:
    barrier = threading.Barrier(3, timeout=JOIN)
    order: list[str] = []

    def process(item: str, handle: object) -> None:
        if item.startswith("parallel"):
            barrier.wait()  # broken (a failure) unless the three run at once
        order.append(item)

    pool = tp.pool("parallel", 3)
    q = ShardedWorkQueue("q", 4, process)
    pool.add_work_queue(q)
    pool.start()
    for key in ("a", "b", "c"):
        q.queue(key, f"parallel {key}")
    assert pool.drain(timeout=JOIN)
    started, release = tp.gate(), tp.gate()

    def blocking(item: str, handle: object) -> None:
        if item == "first":
            started.set()
            assert release.wait(JOIN)
        order.append(item)

    one = ShardedWorkQueue("one", 4, blocking)
    pool.add_work_queue(one)
    one.queue("k", "first")
    wait(started, "the first item of k")
    one.queue("k", "second")
    assert one.stats()["shards"][one.shard_of("k")]["in_flight"] == 1
    assert not one.has_work(), "k's second item is ready while its first runs"
    release.set()
    assert pool.drain(timeout=JOIN)
    assert order[-2:] == ["first", "second"]


def test_each_shard_has_a_lock_of_its_own_class(tp: Harness) -> None:
    pool = tp.pool("locks", 1)
    q = ShardedWorkQueue("named", 3, lambda item, handle: None)
    pool.add_work_queue(q)
    pool.start()
    for key in range(30):
        q.queue(key, key)
    assert pool.drain(timeout=JOIN)
    classes = {c["name"] for c in lockdep.graph()["classes"]}
    assert {f"ShardedWorkQueue::named::shard{i}" for i in range(3)} <= classes
    edges = {(e["from"], e["to"]) for e in lockdep.graph()["edges"]}
    assert ("ThreadPool::locks", "ShardedWorkQueue::named::shard0") in edges  # pool, then shard


def test_pause_drain_and_stop_cover_every_shard(tp: Harness) -> None:
    check = PerKey()
    pool = tp.pool("control", 4)
    q = ShardedWorkQueue("q", 4, check)
    pool.add_work_queue(q)
    pool.start()
    pool.pause()
    for key in range(20):
        q.queue(key, (key, 0))
    with pytest.raises(RuntimeError, match="paused"):
        pool.drain(q)
    assert q.size() == 20 and check.seen == []
    pool.unpause()
    assert pool.drain(q, timeout=JOIN)
    assert len(check.seen) == 20
    pool.pause()
    for key in range(10):
        q.queue(key, (key, 1))
        q.queue(key, (key, 2))
    left = pool.stop()
    assert sorted(left["q"]) == sorted((k, n) for k in range(10) for n in (1, 2))
    assert q.size() == 0 and all(s["keys"] == 0 for s in q.stats()["shards"])
    pool.unpause()


@pytest.mark.slow
def test_resizing_while_items_flow_keeps_order_and_loses_nothing(tp: Harness) -> None:
    check = PerKey()
    pool = tp.pool("resize", 2)
    q = ShardedWorkQueue("q", 4, check)
    pool.add_work_queue(q)
    pool.start()
    stop = threading.Event()

    def resize() -> None:
        sizes = itertools.cycle([1, 5, 0, 3, 8, 2])
        while not stop.wait(0.001):
            pool.set_num_threads(next(sizes))
        pool.set_elastic(1, 6, 0.001)

    resizer = threading.Thread(target=resize)
    resizer.start()
    producer = threading.Thread(target=produce(q, range(50), 400))
    producer.start()
    join(producer)
    stop.set()
    join(resizer)
    assert pool.drain(timeout=JOIN * 2)
    assert check.overlaps == [] and check.disorder == []
    assert len(check.seen) == 50 * 400


def test_queue_item_takes_the_key_from_the_item(tp: Harness) -> None:
    seen: list[Any] = []
    pool = tp.pool("keyed", 2)
    q = ShardedWorkQueue(
        "q", 2, lambda item, handle: seen.append(item), key=lambda item: item["account"]
    )
    pool.add_work_queue(q)
    pool.start()
    for n in range(10):
        q.queue_item({"account": n % 3, "n": n})
    assert pool.drain(timeout=JOIN)
    for account in range(3):
        mine = [item["n"] for item in seen if item["account"] == account]
        assert mine == sorted(mine)
    plain = ShardedWorkQueue("plain", 2, lambda item, handle: None)
    with pytest.raises(TypeError, match="made without key="):
        plain.queue_item(1)


def test_a_finish_step_sees_the_error_and_the_key_is_let_go(tp: Harness) -> None:
    errors: list[Any] = []

    def process(item: int, handle: object) -> None:
        if item == 0:
            raise ValueError("first")

    def finish(item: int) -> None:
        errors.append((item, type(q.error).__name__))

    pool = tp.pool("errors", 1)
    q = ShardedWorkQueue("q", 2, process, finish)
    pool.add_work_queue(q)
    pool.start()
    q.queue("k", 0)
    q.queue("k", 1)
    assert pool.drain(timeout=JOIN)
    assert errors == [(0, "ValueError"), (1, "NoneType")]
    assert q.stats()["failed"] == 1


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((0,), ValueError, "num_shards must be an int >= 1"),
        ((True,), TypeError, "num_shards must be an int >= 1"),
        ((2, None), TypeError, "needs process="),
        ((2, 3), TypeError, "process must be a callable"),
    ],
)
def test_bad_arguments_are_refused(args: tuple[Any, ...], error: type, match: str) -> None:
    if len(args) == 1:
        args = (*args, lambda item, handle: None)
    with pytest.raises(error, match=match):
        ShardedWorkQueue("bad", *args)
