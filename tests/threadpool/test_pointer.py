"""PointerWQ: the processing count, requeue, front, and items held back by a subclass."""

from __future__ import annotations

from typing import Any

import pytest

from threadpool import PointerWQ
from threadpool.queue_base import NOTHING

from .conftest import JOIN, Harness


def noop(item: Any, handle: object) -> None:
    pass


def test_pointer_queue_counts_processing_and_requeue_undoes_a_dequeue() -> None:
    q = PointerWQ("p", process=noop)
    a, b = object(), object()
    q.queue(a)
    q.queue(b)
    assert q.front() is a
    assert q.dequeue_unit() is a and q.processing == 1
    q.requeue_back(a)
    assert q.processing == 0 and q.front() is b
    assert q.dequeue_unit() is b
    q.requeue_front(b)
    assert q.front() is b
    with pytest.raises(RuntimeError, match="was not dequeued"):
        q.requeue_front(b)
    assert [q.dequeue_unit(), q.dequeue_unit()] == [b, a]
    q.finish_unit(b, None)
    q.finish_unit(a, None)
    assert q.processing == 0 and q.empty()
    with pytest.raises(RuntimeError, match="finish with nothing processing"):
        q.finish_unit(a, None)


def test_pointer_queue_subclass_holding_items_back_then_requeueing(tp: Harness) -> None:
    class Deferring(PointerWQ):
        held: list[Any] = []

        def dequeue_unit(self) -> Any:
            item = super().dequeue_unit()
            if item is not NOTHING and getattr(item, "defer", False):
                self.held.append(item)  # taken, not handed out: processing stays counted
                return NOTHING
            return item

    class Op:
        def __init__(self, defer: bool) -> None:
            self.defer = defer

    done: list[Op] = []
    pool = tp.pool("defer", 1)
    q = Deferring("p", process=lambda op, handle: done.append(op))
    pool.add_work_queue(q)
    pool.start()
    deferred, plain = Op(True), Op(False)
    q.queue(deferred)
    q.queue(plain)
    assert not q.drain(timeout=0.1), "drain() ignored the item held back"
    assert done == [plain] and q.processing == 1
    deferred.defer = False
    q.requeue_front(q.held.pop())
    assert q.drain(timeout=JOIN)
    assert done == [plain, deferred] and q.processing == 0
