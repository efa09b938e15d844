"""elastic.py: elastic pools grow while items wait on busy threads, shrink when idle."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from threadpool import ThreadPool, WorkQueueVal
from threadpool.service.elastic import Elastic

from .conftest import DEADLINE
from .handlers import Gate, hold


@pytest.fixture
def gated() -> Iterator[tuple[ThreadPool, WorkQueueVal, list[Gate]]]:
    pool = ThreadPool("elastic", 1)
    q = WorkQueueVal("q", hold)
    pool.add_work_queue(q)
    gates: list[Gate] = []
    pool.start()
    try:
        yield pool, q, gates
    finally:
        for g in gates:
            g.go.set()
        pool.stop()


def hold_items(q: WorkQueueVal, gates: list[Gate], n: int) -> list[Gate]:
    new = [Gate.new() for _ in range(n)]
    gates.extend(new)
    for g in new:
        q.queue(g)
    return new


def test_grows_by_the_waiting_items_when_every_thread_is_busy(
    gated: tuple[ThreadPool, WorkQueueVal, list[Gate]],
) -> None:
    pool, q, gates = gated
    first, *_ = hold_items(q, gates, 3)
    assert first.started.wait(DEADLINE)
    elastic = Elastic(1, 8, 30.0)
    assert elastic.step(pool, now=0.0) == 3  # one busy thread, two waiting items
    assert pool.num_threads == 3 and pool.wait_for_threads(3, timeout=DEADLINE)
    assert all(g.started.wait(DEADLINE) for g in gates)


def test_does_not_grow_past_max_threads(
    gated: tuple[ThreadPool, WorkQueueVal, list[Gate]],
) -> None:
    pool, q, gates = gated
    first, *_ = hold_items(q, gates, 6)
    assert first.started.wait(DEADLINE)
    elastic = Elastic(1, 2, 30.0)
    assert elastic.step(pool, now=0.0) == 2
    assert pool.wait_for_threads(2, timeout=DEADLINE)
    assert gates[1].started.wait(DEADLINE)
    assert elastic.step(pool, now=1.0) is None and pool.num_threads == 2


def test_does_not_grow_when_a_thread_is_free(
    gated: tuple[ThreadPool, WorkQueueVal, list[Gate]],
) -> None:
    pool, _q, _gates = gated
    pool.set_num_threads(2)
    assert pool.wait_for_threads(2, timeout=DEADLINE)
    assert Elastic(1, 8, 30.0).step(pool, now=0.0) is None and pool.num_threads == 2


def test_shrinks_one_thread_per_idle_timeout_down_to_min_threads(
    gated: tuple[ThreadPool, WorkQueueVal, list[Gate]],
) -> None:
    pool, _q, _gates = gated
    pool.set_num_threads(3)
    assert pool.wait_for_threads(3, timeout=DEADLINE)
    elastic = Elastic(1, 8, 10.0)
    assert elastic.step(pool, now=100.0) is None  # idle spell starts
    assert elastic.step(pool, now=109.0) is None
    assert elastic.step(pool, now=110.0) == 2
    assert elastic.step(pool, now=115.0) is None  # the clock started again
    assert elastic.step(pool, now=120.0) == 1
    assert elastic.step(pool, now=200.0) is None and pool.num_threads == 1  # the minimum
    assert pool.wait_for_threads(1, timeout=DEADLINE)


def test_a_busy_pool_restarts_the_idle_clock(
    gated: tuple[ThreadPool, WorkQueueVal, list[Gate]],
) -> None:
    pool, q, gates = gated
    pool.set_num_threads(2)
    assert pool.wait_for_threads(2, timeout=DEADLINE)
    elastic = Elastic(1, 2, 10.0)
    assert elastic.step(pool, now=0.0) is None and elastic.idle_since == 0.0
    busy = hold_items(q, gates, 2)
    assert all(g.started.wait(DEADLINE) for g in busy)
    assert elastic.step(pool, now=5.0) is None and elastic.idle_since is None
    for g in busy:
        g.go.set()
    assert pool.drain(timeout=DEADLINE)
    assert elastic.step(pool, now=12.0) is None  # a new idle spell, not 12 s of one
    assert pool.num_threads == 2


def test_clamp_brings_the_size_within_new_limits(
    gated: tuple[ThreadPool, WorkQueueVal, list[Gate]],
) -> None:
    pool, _q, _gates = gated
    pool.set_num_threads(5)
    Elastic(1, 3, 10.0).clamp(pool)
    assert pool.num_threads == 3
    Elastic(4, 6, 10.0).clamp(pool)
    assert pool.num_threads == 4
