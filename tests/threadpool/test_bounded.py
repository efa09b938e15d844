"""Bounded queues (max_items) and their policies when full: reject, block (with a
timeout), caller_runs, drop_oldest; each counted; the bound strict under contention."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from threadpool import BatchWorkQueue, PointerWQ, QueueFull, WorkQueue, WorkQueueVal

from .conftest import JOIN, Harness, join, wait

KINDS = [WorkQueueVal, WorkQueue, BatchWorkQueue, PointerWQ]


def recorder(seen: list[Any]) -> Any:
    def process(item: Any, handle: object) -> None:
        if isinstance(item, list):
            seen.extend(item)
        else:
            seen.append(item)

    return process


@pytest.mark.parametrize("make", KINDS)
def test_reject_refuses_an_item_when_full_and_counts_it(tp: Harness, make: type) -> None:
    seen: list[int] = []
    pool = tp.pool("reject", 1)
    q = make("q", process=recorder(seen), max_items=2)
    pool.add_work_queue(q)  # not started: nothing leaves the queue
    q.queue(1)
    q.queue(2)
    with pytest.raises(QueueFull, match=r"queue 'q' is full \(max_items 2, policy 'reject'\)"):
        q.queue(3)
    stats = q.stats()
    assert (stats["items"], stats["rejected"], stats["max_items"]) == (2, 1, 2)
    pool.start()
    assert pool.drain(timeout=JOIN)
    q.queue(4)  # room again
    assert pool.drain(timeout=JOIN)
    assert seen == [1, 2, 4]


def test_block_times_out_with_queue_full_and_counts_it(tp: Harness) -> None:
    q = WorkQueueVal("q", process=lambda item, handle: None, max_items=1, policy="block")
    q.block_timeout = 0.05
    pool = tp.pool("block", 1)
    pool.add_work_queue(q)
    q.queue(1)
    begin = time.monotonic()
    with pytest.raises(QueueFull, match=r"no room within block_timeout 0\.05s"):
        q.queue(2)
    assert time.monotonic() - begin >= 0.05  # it did wait
    assert q.stats()["rejected"] == 1


def test_block_waits_for_room_and_loses_nothing(tp: Harness, paths: str) -> None:
    seen: list[int] = []
    pool = tp.pool("blocking", 2)
    q = PointerWQ("q", process=recorder(seen), max_items=2, policy="block")
    pool.add_work_queue(q)
    # 200 items through 2 places: the producer can only finish once workers make room
    producer = threading.Thread(target=lambda: [q.queue(i) for i in range(200)])
    producer.start()
    pool.start()
    join(producer)
    assert pool.drain(timeout=JOIN)
    assert sorted(seen) == list(range(200))
    assert q.stats()["rejected"] == 0


def test_block_from_a_finish_step_raises_instead_of_deadlocking(tp: Harness) -> None:
    errors: list[BaseException] = []
    done = threading.Event()
    pool = tp.pool("finish", 1)
    target = WorkQueueVal("target", process=lambda item, handle: None, max_items=1)
    target.policy = "block"

    def finish(item: int) -> None:  # runs with the pool lock held
        try:
            target.queue(item)
            target.queue(item + 1)  # full, and its workers need the lock we hold
        except QueueFull as exc:
            errors.append(exc)
        done.set()

    source = WorkQueueVal("source", process=lambda item, handle: None, finish=finish)
    pool.add_work_queue(source)
    pool.add_work_queue(target)
    pool.pause_new()  # target keeps its item until the finish step has run
    pool.start()
    pool.unpause()
    source.queue(10)
    wait(done, "the finish step")
    assert len(errors) == 1 and "holding the pool lock" in str(errors[0])


def test_caller_runs_under_contention_runs_items_in_the_producers(tp: Harness) -> None:
    gate = tp.gate()
    started = threading.Event()
    runners: dict[int, str] = {}
    finished: list[tuple[int, bool]] = []
    pool = tp.pool("callers", 1)

    def process(item: int, handle: object) -> None:
        runners[item] = threading.current_thread().name
        if item == 0:
            started.set()
            assert gate.wait(JOIN)  # the one worker is busy: the queue fills

    def finish(item: int) -> None:
        finished.append((item, pool._state.lock.is_locked_by_me()))

    q = WorkQueueVal("q", process=process, finish=finish, max_items=4, policy="caller_runs")
    pool.add_work_queue(q)
    pool.start()
    q.queue(0)
    wait(started, "the worker to take item 0")

    def produce(p: int) -> None:
        for item in range(1 + p, 401, 4):
            q.queue(item)

    producers = [
        threading.Thread(target=produce, args=(p,), name=f"producer {p}") for p in range(4)
    ]
    for t in producers:
        t.start()
    for t in producers:
        join(t)
    gate.set()
    assert pool.drain(timeout=JOIN)
    assert sorted(runners) == list(range(401))
    by_producers = [i for i, name in runners.items() if name.startswith("producer")]
    assert len(by_producers) == 400 - 4  # all but the four that fit while the worker was busy
    assert sorted(i for i, _ in finished) == list(range(401))
    assert all(locked for _, locked in finished), "a finish step ran without the pool lock"
    stats = q.stats()
    assert stats["processed"] == 401 and stats["rejected"] == 0


def test_drop_oldest_hands_the_dropped_items_to_on_drop_in_order(tp: Harness) -> None:
    seen: list[int] = []
    dropped: list[int] = []
    pool = tp.pool("drop", 1)
    q = WorkQueue(
        "q", process=recorder(seen), max_items=3, policy="drop_oldest", on_drop=dropped.append
    )
    pool.add_work_queue(q)
    for i in range(10):
        assert q.queue(i) is True
    assert dropped == list(range(7))
    assert q.stats()["dropped"] == 7
    pool.start()
    assert pool.drain(timeout=JOIN)
    assert seen == [7, 8, 9]


def test_drop_oldest_without_on_drop_logs_each_drop(
    tp: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    q = WorkQueueVal("q", process=lambda item, handle: None, max_items=1, policy="drop_oldest")
    with caplog.at_level(logging.WARNING, logger="threadpool"):
        q.queue(1)
        q.queue(2)
    assert "dropped the oldest item to make room" in caplog.text
    assert q.clear() == [2]


@pytest.mark.slow
def test_the_bound_is_strict_with_many_producers(tp: Harness, paths: str) -> None:
    worst = [0]
    seen: list[int] = []

    def process(item: int, handle: object) -> None:
        size = q.size() or 0
        if size > worst[0]:
            worst[0] = size
        seen.append(item)

    pool = tp.pool("strict", 3)
    q = WorkQueueVal("q", process=process, max_items=5, policy="block")
    pool.add_work_queue(q)
    pool.start()
    producers = [
        threading.Thread(target=lambda p=p: [q.queue(i) for i in range(p, 20_000, 6)])
        for p in range(6)
    ]
    for t in producers:
        t.start()
    for t in producers:
        join(t)
    assert pool.drain(timeout=JOIN)
    assert sorted(seen) == list(range(20_000))
    assert worst[0] <= 5


def test_max_items_changes_at_run_time(tp: Harness) -> None:
    seen: list[int] = []
    pool = tp.pool("resize", 1)
    q = WorkQueueVal("q", process=recorder(seen), max_items=4)
    pool.add_work_queue(q)
    for i in range(4):
        q.queue(i)
    q.max_items = 2  # below what is queued: the next two items to leave pay it back
    with pytest.raises(QueueFull):
        q.queue(4)
    q.max_items = 6
    q.queue(5)
    q.queue(6)
    with pytest.raises(QueueFull):
        q.queue(7)
    q.max_items = None
    for i in range(8, 20):
        q.queue(i)
    pool.start()
    assert pool.drain(timeout=JOIN)
    assert seen == [0, 1, 2, 3, 5, 6, *range(8, 20)]
    assert q.stats()["rejected"] == 2


def test_a_requeue_into_a_full_queue_is_not_refused(tp: Harness) -> None:
    seen: list[int] = []
    held: list[Any] = []
    two = threading.Event()

    class Holding(PointerWQ):
        def dequeue_unit(self) -> Any:
            unit = super().dequeue_unit()
            if unit == 1 and not held:  # hold item 1 back (Ceph's way): it stays processing
                held.append(unit)
                return self.dequeue_unit()
            return unit

    def process(item: int, handle: object) -> None:
        seen.append(item)
        if item == 2:
            two.set()

    pool = tp.pool("requeue", 1)
    q = Holding("q", process=process, max_items=2)
    pool.add_work_queue(q)
    q.queue(1)
    q.queue(2)
    pool.start()
    wait(two, "item 2")
    pool.pause()
    q.queue(3)
    q.queue(4)  # full again
    q.requeue_front(held[0])  # past the bound: it had a place when it was taken
    assert q.stats()["items"] == 3 and q.processing == 0
    with pytest.raises(QueueFull):
        q.queue(5)
    pool.unpause()
    assert pool.drain(timeout=JOIN)
    assert seen == [2, 1, 3, 4]
    q.queue(6)
    q.queue(7)  # the place the requeue borrowed is back: two fit again
    assert pool.drain(timeout=JOIN)


class OwnStorage(WorkQueueVal):
    def _enqueue(self, item: Any) -> None:
        super()._enqueue(item)


@pytest.mark.parametrize(
    ("kw", "error", "match"),
    [
        ({"max_items": 0}, ValueError, "max_items must be an int >= 1 or None"),
        ({"max_items": 2.0}, TypeError, "max_items must be an int >= 1 or None"),
        ({"max_items": True}, TypeError, "max_items must be an int >= 1 or None"),
        ({"policy": "wait"}, ValueError, "policy must be one of 'reject', 'block'"),
        ({"block_timeout": -1}, ValueError, "block_timeout must be"),
        ({"on_drop": 3}, TypeError, "on_drop must be a callable"),
    ],
)
def test_bad_bound_settings_are_refused(kw: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        WorkQueueVal("q", process=lambda item, handle: None, **kw)


def test_storage_of_ones_own_cannot_be_bounded() -> None:
    with pytest.raises(TypeError, match="max_items and deadlines need the ready-made storage"):
        OwnStorage("own", process=lambda item, handle: None, max_items=3)
    q = OwnStorage("own", process=lambda item, handle: None)
    with pytest.raises(TypeError, match="cannot be bounded"):
        q.max_items = 3


def test_a_huge_bound_costs_no_memory_up_front(tp: Harness) -> None:
    seen: list[int] = []
    pool = tp.pool("huge", 2)
    q = WorkQueueVal("q", process=recorder(seen), max_items=10**12)
    pool.add_work_queue(q)
    pool.start()
    for i in range(5000):  # through a few refills of the tokens
        q.queue(i)
    assert pool.drain(timeout=JOIN)
    assert sorted(seen) == list(range(5000))
    q.max_items = 3
    pool.pause()
    for i in range(3):
        q.queue(i)
    with pytest.raises(QueueFull):
        q.queue(3)
    pool.unpause()


@pytest.mark.parametrize("make", KINDS)
@pytest.mark.parametrize("timed", [False, True], ids=["untimed", "timed"])
def test_a_refused_deadline_takes_no_place(tp: Harness, make: type, timed: bool) -> None:
    """queue() with a deadline the queue cannot take (none at all, or a bad one) raises
    before it takes a place: the bound stays whole."""
    seen: list[int] = []
    pool = tp.pool("refused", 1)
    q = make("q", process=recorder(seen), max_items=1, deadlines=timed)
    pool.add_work_queue(q)  # not started: nothing leaves the queue
    for _ in range(3):
        with pytest.raises((TypeError, ValueError)):
            q.queue(1, deadline=-1.0 if timed else 5.0)
    q.queue(2)  # the one place is still free
    with pytest.raises(QueueFull):
        q.queue(3)
    pool.start()
    assert pool.drain(timeout=JOIN)
    assert seen == [2]


@pytest.mark.slow
@pytest.mark.parametrize("timed", [False, True], ids=["untimed", "timed"])
def test_removing_and_setting_the_bound_while_producers_run(
    tp: Harness, paths: str, timed: bool
) -> None:
    """max_items flips between None and a bound while producers queue: no producer fails
    (queue() reads the bound's places once) and every item is processed once."""
    seen: list[int] = []
    pool = tp.pool("flip", 2)
    q = WorkQueueVal("q", process=recorder(seen), max_items=10**6, deadlines=timed)
    pool.add_work_queue(q)
    pool.start()
    done = threading.Event()

    def flip() -> None:
        while not done.is_set():
            q.max_items = None
            q.max_items = 10**6

    flipper = threading.Thread(target=flip)
    flipper.start()
    producers = [
        threading.Thread(target=lambda p=p: [q.queue(i) for i in range(p, 20_000, 4)])
        for p in range(4)
    ]
    try:
        for t in producers:
            t.start()
        for t in producers:
            join(t)
    finally:
        done.set()
        join(flipper)
    assert pool.drain(timeout=JOIN)
    assert sorted(seen) == list(range(20_000))
