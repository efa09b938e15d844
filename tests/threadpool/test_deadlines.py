"""Deadlines (PVFS2's job time manager): an item whose deadline passes before a worker
takes it is not processed but finished with DeadlineExpired, handed to on_expire and
counted; the timer finds such items anywhere in a queue; far deadlines never expire."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from threadpool import (
    BatchWorkQueue,
    DeadlineExpired,
    PointerWQ,
    QueueFull,
    WorkQueue,
    WorkQueueVal,
)

from .conftest import JOIN, Harness, wait

KINDS = [WorkQueueVal, WorkQueue, BatchWorkQueue, PointerWQ]
NEAR = 0.02  # seconds: a deadline the test lets pass
FAR = 3600.0


def let_pass(seconds: float) -> None:
    """Let a deadline pass: what is tested here is the clock itself."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(seconds / 4)


def timers_drop_to(q: Any, most: int) -> bool:
    """Whether the timers of taken items are dropped, down to ``most``, in bounded time:
    the pool looks at pending timers every RECHECK seconds, there is no event to wait on."""
    end = time.monotonic() + JOIN
    while q.stats()["timers"] > most:
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


class Record:
    """process / finish / on_expire callables that record what they were given."""

    def __init__(self) -> None:
        self.processed: list[Any] = []
        self.finished: list[tuple[Any, str]] = []
        self.expired: list[Any] = []
        self.queue: Any = None

    def process(self, item: Any, handle: object) -> None:
        self.processed.extend(item if isinstance(item, list) else [item])

    def finish(self, unit: Any) -> None:
        self.finished.append((unit, type(self.queue.error).__name__))

    def on_expire(self, item: Any) -> None:
        self.expired.append(item)

    def make(self, kind: type, name: str = "q", **kw: Any) -> Any:
        self.queue = kind(
            name, process=self.process, finish=self.finish, on_expire=self.on_expire, **kw
        )
        return self.queue


@pytest.mark.parametrize("make", KINDS)
def test_expired_items_are_never_processed_and_far_ones_always_are(tp: Harness, make: type) -> None:
    rec = Record()
    pool = tp.pool("mixed", 2)
    q = rec.make(make, deadlines=True)
    pool.add_work_queue(q)  # not started: nothing is taken before the near deadlines pass
    for i in range(40):
        q.queue(i, deadline=NEAR if i % 2 else FAR)
    let_pass(NEAR)
    pool.start()
    assert pool.drain(timeout=JOIN)
    odd, even = list(range(1, 40, 2)), list(range(0, 40, 2))
    assert sorted(rec.processed) == even
    assert sorted(rec.expired) == odd
    expired_finishes = [u for u, error in rec.finished if error == "DeadlineExpired"]
    flat = [i for u in expired_finishes for i in (u if isinstance(u, list) else [u])]
    assert sorted(flat) == odd
    stats = q.stats()
    assert stats["expired"] == 20 and stats["processed"] == 20 and stats["items"] == 0
    # queued = processed + expired (+ rejected, dropped, left: none here)
    assert stats["processed"] + stats["expired"] == 40


def test_the_queue_default_deadline_applies_and_a_call_may_override_it(tp: Harness) -> None:
    rec = Record()
    pool = tp.pool("default", 1)
    q = rec.make(WorkQueueVal, deadline=NEAR)
    assert q.deadline == NEAR and q.deadlines
    pool.add_work_queue(q)
    q.queue("near")
    q.queue("far", deadline=FAR)
    let_pass(NEAR)
    pool.start()
    assert pool.drain(timeout=JOIN)
    assert rec.processed == ["far"] and rec.expired == ["near"]
    assert sorted(rec.finished) == [("far", "NoneType"), ("near", "DeadlineExpired")]


def test_the_timer_finds_an_expired_item_behind_a_live_one(tp: Harness) -> None:
    # Only one worker, busy with a gated item; behind it: far A, near B, far C. When the
    # worker comes back, B must be expired before A is processed: the heap found it.
    gate = tp.gate()
    started = threading.Event()
    order: list[str] = []

    def process(item: str, handle: object) -> None:
        if item == "gated":
            started.set()
            assert gate.wait(JOIN)
        order.append(f"process {item}")

    pool = tp.pool("deep", 1)
    q = WorkQueueVal(
        "q", process=process, deadlines=True, on_expire=lambda item: order.append(f"expire {item}")
    )
    pool.add_work_queue(q)
    pool.start()
    q.queue("gated")
    wait(started, "the gated item")
    q.queue("A", deadline=FAR)
    q.queue("B", deadline=NEAR)
    q.queue("C", deadline=FAR)
    let_pass(NEAR)
    gate.set()
    assert pool.drain(timeout=JOIN)
    assert order == ["process gated", "expire B", "process A", "process C"]


def test_a_deadline_needs_a_queue_made_for_deadlines() -> None:
    q = WorkQueueVal("q", process=lambda item, handle: None)
    with pytest.raises(TypeError, match="made without deadlines"):
        q.queue(1, deadline=5)
    with pytest.raises(ValueError, match="made without deadlines"):
        q.deadline = 5
    assert q.clear() == []


@pytest.mark.parametrize(
    ("kw", "error", "match"),
    [
        ({"deadline": 0}, ValueError, "deadline must be a number of seconds > 0"),
        ({"deadline": -1}, ValueError, "deadline must be"),
        ({"deadline": "5"}, TypeError, "deadline must be"),
        ({"deadlines": 1}, TypeError, "deadlines must be True or False"),
        ({"on_expire": "x"}, TypeError, "on_expire must be a callable"),
    ],
)
def test_bad_deadline_settings_are_refused(kw: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        WorkQueueVal("q", process=lambda item, handle: None, **kw)


def test_a_bad_deadline_on_queue_is_refused_and_nothing_is_queued() -> None:
    q = WorkQueueVal("q", process=lambda item, handle: None, deadlines=True)
    with pytest.raises(ValueError, match="deadline must be"):
        q.queue(1, deadline=float("inf"))
    assert q.size() == 0


def test_expiry_frees_the_place_in_a_bounded_queue(tp: Harness) -> None:
    rec = Record()
    pool = tp.pool("bounded", 1)
    q = rec.make(PointerWQ, deadline=NEAR, max_items=2)
    pool.add_work_queue(q)
    q.queue("a")
    q.queue("b")
    with pytest.raises(QueueFull):
        q.queue("c")
    let_pass(NEAR)
    pool.start()
    assert pool.drain(timeout=JOIN)
    assert sorted(rec.expired) == ["a", "b"]
    q.queue("d", deadline=FAR)
    q.queue("e", deadline=FAR)
    assert pool.drain(timeout=JOIN)
    assert rec.processed == ["d", "e"]


def test_stop_hands_over_items_found_expired_and_returns_the_rest(tp: Harness) -> None:
    rec = Record()
    pool = tp.pool("stop", 1)
    q = rec.make(WorkQueueVal, deadlines=True)
    pool.add_work_queue(q)
    pool.pause_new()
    pool.start()
    q.queue("near", deadline=NEAR)
    q.queue("far", deadline=FAR)
    let_pass(NEAR)
    left = pool.stop()
    assert left == {"q": ["near", "far"]}  # taken by nobody: left, expired or not
    assert rec.processed == [] and rec.expired == []


def test_failing_on_expire_and_finish_are_logged_and_the_worker_goes_on(
    tp: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[int] = []

    def boom(item: Any) -> None:
        raise RuntimeError(f"boom {item}")

    pool = tp.pool("boom", 1)
    q = WorkQueueVal(
        "q",
        process=lambda item, handle: seen.append(item),
        finish=boom,
        on_expire=boom,
        deadlines=True,
    )
    pool.add_work_queue(q)
    q.queue(1, deadline=NEAR)
    let_pass(NEAR)
    with caplog.at_level(logging.ERROR, logger="threadpool"):
        pool.start()
        assert pool.drain(timeout=JOIN)
    assert "on_expire raised" in caplog.text
    assert "finish step of an expired item raised" in caplog.text
    q.set_on_expire(None)
    q.queue(2, deadline=FAR)
    assert pool.drain(timeout=JOIN)
    assert seen == [2] and q.stats()["expired"] == 1


def test_taken_timers_do_not_pile_up(tp: Harness) -> None:
    # Deadlines out of order go on the heap; once their items are taken the timers go too.
    pool = tp.pool("heap", 2)
    q = WorkQueueVal("q", process=lambda item, handle: None, deadlines=True)
    pool.add_work_queue(q)
    pool.start()
    for i in range(20_000):
        q.queue(i, deadline=FAR - (i % 2))  # every other one is shorter: a timer each
    assert pool.drain(timeout=JOIN)
    assert q.stats()["processed"] == 20_000
    assert timers_drop_to(q, 64), f"{q.stats()['timers']} timers left for 0 queued items"


def test_deadline_expired_says_which_queue() -> None:
    exc = DeadlineExpired("ops")
    assert isinstance(exc, TimeoutError) and exc.queue == "ops"
    assert "queue 'ops'" in str(exc)


def test_an_item_taken_before_its_timer_is_due_is_never_also_expired(tp: Harness) -> None:
    # Queued at the front, an item with a deadline has a timer on the heap; taken and
    # processed first, its timer must come due and find it gone.
    rec = Record()
    pool = tp.pool("front", 1)
    q = rec.make(WorkQueueVal, deadlines=True)
    pool.add_work_queue(q)
    pool.start()
    q.queue_front("first", deadline=0.05)
    assert pool.drain(timeout=JOIN)
    let_pass(0.05)
    q.queue("later")  # a worker comes by, the timer is due
    assert pool.drain(timeout=JOIN)
    assert timers_drop_to(q, 0)
    assert rec.processed == ["first", "later"] and rec.expired == []
    assert q.stats()["expired"] == 0 and q.stats()["processed"] == 2
