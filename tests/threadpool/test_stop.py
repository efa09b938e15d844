"""ThreadPool.stop(clear_after, timeout): bounded by its timeout, returns what is left,
names the workers still stuck in a handler."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from threadpool import StopResult, WorkQueueVal

from .conftest import JOIN, Harness, join, wait


def stuck_queue(started: threading.Event, release: threading.Event, seen: list[Any]) -> Any:
    def process(item: Any, handle: object) -> None:
        started.set()
        assert release.wait(JOIN)
        seen.append(item)

    return WorkQueueVal("q", process=process)


def test_stop_with_a_timeout_returns_past_a_handler_stuck_for_ever_and_names_it(
    tp: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    started, release = tp.gate(), tp.gate()
    seen: list[int] = []
    pool = tp.pool("stuck", 1)
    q = stuck_queue(started, release, seen)
    pool.add_work_queue(q)
    pool.start()
    for i in range(5):
        q.queue(i)
    wait(started, "the first item to start")
    result: list[StopResult] = []
    with caplog.at_level(logging.ERROR, logger="threadpool"):
        stopper = threading.Thread(target=lambda: result.append(pool.stop(timeout=0.2)))
        stopper.start()
        join(stopper)  # returned although the handler never will (until released below)
    left = result[0]
    assert left.stuck == ["stuck thread 0 (queue 'q')"]
    assert left == {"q": [1, 2, 3, 4]}  # what was queued behind it; its own unit it holds
    assert "stop() timed out after 0.2s" in caplog.text and "stuck thread 0" in caplog.text
    assert not pool.running
    release.set()  # the stuck worker finishes its unit, then exits
    assert pool.wait_for_threads(count=0, timeout=JOIN)
    assert seen == [0]
    stats = q.stats()
    assert stats["processed"] == 1 and stats["in_flight"] == 0
    # queued (5) = processed (1) + left at stop (4)
    assert stats["processed"] + sum(map(len, left.values())) == 5


def test_stop_with_a_timeout_and_no_stuck_worker_names_nobody(tp: Harness) -> None:
    pool = tp.pool("fine", 3)
    q = WorkQueueVal("q", process=lambda item, handle: None)
    pool.add_work_queue(q)
    pool.start()
    q.queue(1)
    assert pool.drain(timeout=JOIN)
    left = pool.stop(timeout=JOIN)
    assert left == {} and left.stuck == []
    assert pool.stats()["threads"] == 0


def test_stop_without_clear_after_keeps_the_items_past_a_stuck_worker(tp: Harness) -> None:
    started, release = tp.gate(), tp.gate()
    seen: list[int] = []
    pool = tp.pool("keep", 1)
    q = stuck_queue(started, release, seen)
    pool.add_work_queue(q)
    pool.start()
    q.queue(0)
    q.queue(1)
    wait(started, "the first item to start")
    left = pool.stop(clear_after=False, timeout=0.05)
    assert left == {} and len(left.stuck) == 1
    assert q.stats()["items"] == 1
    release.set()
    assert pool.wait_for_threads(count=0, timeout=JOIN)
    pool.start()  # the item kept is processed by the next start
    assert pool.drain(timeout=JOIN)
    assert seen == [0, 1]


def test_start_after_a_timed_out_stop_counts_the_stuck_worker_again(tp: Harness) -> None:
    started, release = tp.gate(), tp.gate()
    seen: list[int] = []
    pool = tp.pool("again", 2)
    q = stuck_queue(started, release, seen)
    pool.add_work_queue(q)
    pool.start()
    q.queue(0)
    wait(started, "the first item to start")
    assert len(pool.stop(timeout=0.05).stuck) == 1
    pool.start()
    assert pool.wait_for_threads(count=2, timeout=JOIN)  # the stuck one and a new one
    release.set()
    for i in range(1, 20):
        q.queue(i)
    assert pool.drain(timeout=JOIN)
    assert sorted(seen) == list(range(20))
    assert pool.stats()["threads"] == 2


def test_stop_timeout_zero_still_clears_and_returns(tp: Harness) -> None:
    started, release = tp.gate(), tp.gate()
    pool = tp.pool("zero", 1)
    q = stuck_queue(started, release, [])
    pool.add_work_queue(q)
    pool.start()
    q.queue(0)
    q.queue(1)
    wait(started, "the first item to start")
    begin = time.monotonic()
    left = pool.stop(timeout=0)
    assert time.monotonic() - begin < JOIN
    assert left == {"q": [1]} and left.stuck == ["zero thread 0 (queue 'q')"]


@pytest.mark.parametrize("bad", [-1, float("nan"), "1"])
def test_stop_refuses_a_bad_timeout(tp: Harness, bad: Any) -> None:
    pool = tp.pool("bad", 1)
    pool.start()
    with pytest.raises((TypeError, ValueError), match="timeout must be"):
        pool.stop(timeout=bad)
    assert pool.running
