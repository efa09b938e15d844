"""The four work queues: their protocol, storage hooks, handlers, counters and errors."""

from __future__ import annotations

import heapq
import json
import threading
from typing import Any

import pytest

from threadpool import BatchWorkQueue, PointerWQ, WorkQueue, WorkQueueVal
from threadpool.queue_base import NOTHING

from .conftest import JOIN, Harness, wait

KINDS = [WorkQueueVal, WorkQueue, BatchWorkQueue, PointerWQ]


def noop(item: Any, handle: object) -> None:
    pass


# --- construction -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_needs_a_process_callable_or_an_override(kind: type) -> None:
    with pytest.raises(TypeError, match=r"needs process=callable\(item"):
        kind("q")


@pytest.mark.parametrize("kind", KINDS)
def test_process_callable_and_override_together_are_an_error(kind: type) -> None:
    sub = type("Sub", (kind,), {"_process": lambda self, item, handle: None})
    with pytest.raises(TypeError, match="not both"):
        sub("q", process=noop)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"name": ""}, TypeError, "name must be a non-empty str"),
        ({"process": 3}, TypeError, r"process must be a callable taking \(item"),
        ({"finish": "x"}, TypeError, "finish must be a callable"),
        ({"timeout": -1}, ValueError, "timeout must be a finite number of seconds >= 0"),
        ({"timeout": None}, TypeError, "timeout must be a number of seconds"),
        ({"suicide_timeout": float("inf")}, ValueError, "suicide_timeout"),
        ({"histograms": 1}, TypeError, "histograms must be True or False"),
    ],
)
@pytest.mark.parametrize("kind", KINDS)
def test_bad_arguments(kind: type, kwargs: dict[str, Any], error: type, message: str) -> None:
    args: dict[str, Any] = {"name": "q", "process": noop, **kwargs}
    with pytest.raises(error, match=message):
        kind(**args)


def test_timeouts_settable_and_checked() -> None:
    q = WorkQueueVal("q", process=noop)
    q.timeout = 5
    q.suicide_timeout = 50
    assert (q.timeout, q.suicide_timeout) == (5.0, 50.0)
    with pytest.raises(ValueError, match="timeout must be"):
        q.timeout = -2
    with pytest.raises(TypeError, match="suicide_timeout must be"):
        q.set_suicide_timeout("1")  # type: ignore[arg-type]
    assert (q.timeout, q.suicide_timeout) == (5.0, 50.0)


@pytest.mark.parametrize("bad", [0, -3])
def test_batch_size_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        BatchWorkQueue("b", process=noop, batch_size=bad)
    with pytest.raises(TypeError, match="batch_size must be an int >= 1"):
        BatchWorkQueue("b", process=noop, batch_size=2.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", [WorkQueue, PointerWQ])
def test_reference_queues_reject_none(kind: type) -> None:
    with pytest.raises(TypeError, match="None cannot be queued"):
        kind("q", process=noop).queue(None)


# --- the protocol, driven by hand (as a worker would, without a pool) -------------------------


def test_work_queue_val_finishes_in_completion_order() -> None:
    done: list[str] = []
    q = WorkQueueVal("q", process=noop, finish=done.append)
    assert q.dequeue_unit() is NOTHING
    for item in ("a", "b", None):
        q.queue(item)
    units = [q.dequeue_unit() for _ in range(3)]
    assert units == ["a", "b", None]
    q.process_unit(units[0], None)  # type: ignore[arg-type]
    q.process_unit(units[1], None)  # type: ignore[arg-type]
    q.finish_unit(units[1], None)
    q.process_unit(units[2], None)  # type: ignore[arg-type]
    q.finish_unit(units[0], None)
    q.finish_unit(units[2], None)
    assert done == ["a", "b", None]


def test_work_queue_val_finish_sees_the_error_of_the_item_it_finishes() -> None:
    seen: list[tuple[int, str | None]] = []

    def process(item: int, handle: object) -> None:
        if item == 1:
            raise ValueError("one")

    q = WorkQueueVal("q", process=process, finish=lambda item: seen.append((item, repr(q.error))))
    q.queue(1)
    q.queue(2)
    a, b = q.dequeue_unit(), q.dequeue_unit()
    with pytest.raises(ValueError):
        q.process_unit(a, None)  # type: ignore[arg-type]
    q.process_unit(b, None)  # type: ignore[arg-type]
    q.finish_unit(b, None)
    q.finish_unit(a, None)
    assert seen == [(1, "ValueError('one')"), (2, "None")]
    assert q.error is None


def test_queue_front_goes_first() -> None:
    q = WorkQueueVal("q", process=noop)
    q.queue(1)
    q.queue_front(0)
    assert [q.dequeue_unit(), q.dequeue_unit()] == [0, 1]


def test_work_queue_dequeue_takes_back_a_queued_item_by_identity() -> None:
    q = WorkQueue("q", process=noop)
    a, b, twin = [1], [2], [1]
    q.queue(a)
    q.queue(b)
    assert not q.dequeue(twin), "equal but not the same object"
    assert q.dequeue(a)
    assert not q.dequeue(a)
    assert q.dequeue_unit() is b
    assert q.dequeue_unit() is NOTHING


def test_batch_queue_hands_out_lists_of_at_most_batch_size() -> None:
    q = BatchWorkQueue("b", process=noop, batch_size=4)
    for i in range(10):
        q.queue(i)
    assert [q.dequeue_unit() for _ in range(3)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert q.dequeue_unit() is NOTHING
    q.batch_size = 100
    q.queue(1)
    assert q.dequeue_unit() == [1]


def test_clear_returns_the_queued_items() -> None:
    for kind in (WorkQueueVal, WorkQueue, BatchWorkQueue):
        q = kind("q", process=noop)
        items = [object(), object()]
        for item in items:
            q.queue(item)
        assert q.clear() == items
        assert not q.has_work()


# --- storage and processing hooks, through a pool -----------------------------------------


class PriorityQueue(WorkQueueVal):
    """Ceph-style: storage of its own, and _process overridden."""

    def __init__(self, name: str) -> None:
        self.heap: list[int] = []
        self.order: list[int] = []
        self.locked_enqueues = 0
        super().__init__(name)

    def _enqueue(self, item: int) -> None:
        assert self.pool is not None
        self.locked_enqueues += self.pool._state.lock.is_locked_by_me()
        heapq.heappush(self.heap, item)

    def _empty(self) -> bool:
        return not self.heap

    def _dequeue(self) -> int:
        return heapq.heappop(self.heap)

    def _clear(self) -> list[int]:
        out, self.heap = sorted(self.heap), []
        return out

    def _size(self) -> int:
        return len(self.heap)

    def _process(self, item: int, handle: object) -> None:
        self.order.append(item)


def test_overridden_storage_is_used_under_the_pool_lock(tp: Harness) -> None:
    pool = tp.pool("prio", 1)
    q = PriorityQueue("q")
    pool.add_work_queue(q)
    pool.start()
    pool.pause()
    for item in (5, 1, 4, 2, 3):
        q.queue(item)
    assert q.locked_enqueues == 5
    assert pool.stats()["queues"]["q"]["items"] == 5
    pool.unpause()
    assert pool.drain(timeout=JOIN)
    assert q.order == [1, 2, 3, 4, 5]
    q.queue(9)
    assert pool.drain(timeout=JOIN)
    pool.pause()
    q.queue(8)
    q.queue(7)
    assert pool.stop() == {"q": [7, 8]}


def test_batch_dequeue_override_chooses_the_batch(tp: Harness) -> None:
    class EvensFirst(BatchWorkQueue):
        def _dequeue(self, max_items: int) -> list[int]:
            evens = [i for i in self._items if i % 2 == 0][:max_items] or list(self._items)[:1]
            for i in evens:
                self._items.remove(i)
            return evens

    batches: list[list[int]] = []
    pool = tp.pool("evens", 1)
    q = EvensFirst("b", process=lambda items, handle: batches.append(list(items)), batch_size=2)
    pool.add_work_queue(q)
    pool.pause_new()
    pool.start()
    for i in range(5):
        q.queue(i)
    pool.unpause()
    assert pool.drain(timeout=JOIN)
    assert batches == [[0, 2], [4], [1], [3]]
    stats = pool.stats()["queues"]["b"]
    assert (stats["processed"], stats["items"]) == (5, None)  # no _size: cannot tell


def test_queue_from_a_finish_step_does_not_deadlock(tp: Harness) -> None:
    pool = tp.pool("chain", 2)
    seen: list[int] = []

    def finish(item: int) -> None:
        if item < 20:
            q.queue(item + 1)  # runs under the pool lock; idle workers must be woken
            ptr.queue([item])
            locked.queue(item)

    q = WorkQueueVal("q", process=lambda item, handle: seen.append(item), finish=finish)
    ptr = PointerWQ("p", process=noop)
    locked = PriorityQueue("locked")
    for queue in (q, ptr, locked):
        pool.add_work_queue(queue)
    pool.start()
    assert pool.wait_for_threads(timeout=JOIN)
    q.queue(0)
    assert pool.drain(timeout=JOIN)
    assert seen == list(range(21))
    assert sorted(locked.order) == list(range(20))


def test_handlers_get_the_workers_tp_handle(tp: Harness) -> None:
    pool = tp.pool("handle", 1)
    workers: list[str] = []
    q = WorkQueueVal("q", process=lambda item, handle: workers.append(handle.worker))
    pool.add_work_queue(q)
    pool.start()
    q.queue(1)
    assert pool.drain(timeout=JOIN)
    assert workers == ["handle thread 0"]


def test_queue_level_operations_need_a_pool() -> None:
    q = WorkQueueVal("q", process=noop)
    with pytest.raises(RuntimeError, match="not attached to a pool"):
        q.drain()
    assert PointerWQ("p", process=noop).drain(), "an empty, idle PointerWQ is drained"


# --- counters and histograms --------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_histograms_count_every_item(tp: Harness, kind: type) -> None:
    pool = tp.pool("hist", 2)
    ran = threading.Event()
    q = kind("q", process=lambda item, handle: ran.set(), histograms=True)
    pool.add_work_queue(q)
    pool.start()
    for _ in range(50):
        q.queue(object())
    assert pool.drain(timeout=JOIN)
    wait(ran, "processing")
    stats = pool.stats()["queues"]["q"]
    json.dumps(stats)
    units = stats["item_duration_seconds"]["count"]
    assert stats["processed"] == 50
    assert units == 50 if kind is not BatchWorkQueue else 1 <= units <= 50
    wait_h = stats["queue_wait_seconds"]
    assert wait_h["count"] == 50 and wait_h["counts"][-1] == 50
    assert wait_h["sum"] >= 0 and len(wait_h["counts"]) == len(wait_h["bounds"]) + 1
    assert pool.stop() == {}


def test_histograms_with_storage_of_its_own_have_no_wait_histogram(tp: Harness) -> None:
    class Own(WorkQueue):
        def _enqueue(self, item: Any) -> bool:
            self._items.append(item)
            return True

    q = Own("q", process=noop, histograms=True)
    stats = q.stats()
    assert stats["queue_wait_seconds"] is None
    assert stats["item_duration_seconds"]["count"] == 0


def test_stamped_storage_hands_back_plain_items() -> None:
    q = WorkQueue("q", process=noop, histograms=True)
    a, b, c = object(), object(), object()
    for item in (a, b, c):
        q.queue(item)
    assert q.dequeue(b)
    assert q.dequeue_unit() is a
    assert q.clear() == [c]
    p = PointerWQ("p", process=noop, histograms=True)
    p.queue(a)
    assert p.front() is a
