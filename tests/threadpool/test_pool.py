"""ThreadPool: Ceph's test_workqueue scenarios, control (pause, drain, stop, resize,
queues), failures in handlers, statistics, and bad arguments."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from typing import Any

import pytest

import lockdep
from threadpool import BatchWorkQueue, PointerWQ, ThreadPool, WorkQueue, WorkQueueVal, _osthread
from threadpool.queue_base import NOTHING

from .conftest import JOIN, Harness, join, wait


def record(seen: list[Any]) -> Any:
    def process(item: Any, handle: object) -> None:
        seen.append(item)

    return process


def blocking(started: threading.Event, release: threading.Event) -> Any:
    """A process step that signals it started, then blocks until released."""

    def process(item: Any, handle: object) -> None:
        started.set()
        assert release.wait(JOIN)

    return process


# --- Ceph's test_workqueue ----------------------------------------------------------------


def test_ceph_start_stop(tp: Harness) -> None:
    pool = tp.pool("foo", 10)
    pool.start()
    assert pool.wait_for_threads(timeout=JOIN)
    pool.pause()
    pool.pause_new()
    pool.unpause()
    pool.unpause()
    assert pool.drain(timeout=JOIN)
    assert pool.stop() == {}
    assert pool.stats()["threads"] == 0


def concurrent_workers_reach(pool: ThreadPool, q: WorkQueueVal, n: int, tp: Harness) -> None:
    """n items are in process at the same time: proof that n workers serve the pool."""
    barrier = threading.Barrier(n + 1, timeout=JOIN)
    q._proc = lambda item, handle: barrier.wait()
    for i in range(n):
        q.queue(i)
    barrier.wait()  # BrokenBarrierError (a failure) if fewer than n workers run
    assert pool.drain(q, timeout=JOIN)


def test_ceph_resize_live_thread_count_follows(tp: Harness) -> None:
    pool = tp.pool("bar", 2)
    q = WorkQueueVal("q", process=lambda item, handle: None)
    pool.add_work_queue(q)
    pool.start()
    for n in (2, 5, 3, 0, 15):
        pool.set_num_threads(n)
        assert pool.wait_for_threads(timeout=JOIN), f"live threads did not reach {n}"
        assert pool.stats()["threads"] == n
        assert pool.get_num_threads() == n
        if n:
            concurrent_workers_reach(pool, q, n, tp)


def test_resize_to_zero_leaves_items_queued_until_threads_return(tp: Harness) -> None:
    pool = tp.pool("zero", 2)
    done = threading.Event()
    q = WorkQueueVal("q", process=lambda item, handle: done.set())
    pool.add_work_queue(q)
    pool.start()
    pool.set_num_threads(0)
    assert pool.wait_for_threads(timeout=JOIN)
    q.queue(1)
    assert not done.wait(0.2), "an item was processed by a pool with no threads"
    pool.set_num_threads(1)
    wait(done, "the item to be processed once a thread is back")


@pytest.mark.parametrize("bad", [-1, -15])
def test_negative_size_rejected_and_size_unchanged(tp: Harness, bad: int) -> None:
    pool = tp.pool("neg", 3)
    pool.start()
    with pytest.raises(ValueError, match=r"int >= 0, got -\d+; pool 'neg' keeps 3 threads"):
        pool.set_num_threads(bad)
    assert pool.num_threads == 3
    assert pool.wait_for_threads(timeout=JOIN)
    assert pool.stats()["threads"] == 3


@pytest.mark.parametrize("bad", ["4", 2.0, True, None])
def test_non_int_size_rejected(tp: Harness, bad: object) -> None:
    pool = tp.pool("neg", 3)
    with pytest.raises(TypeError, match="num_threads must be an int >= 0"):
        pool.set_num_threads(bad)  # type: ignore[arg-type]
    assert pool.num_threads == 3


def test_queue_timeouts_changed_at_run_time_apply_to_the_next_item(tp: Harness) -> None:
    hb = tp.hb_map()
    pool = tp.pool("timeouts", 1, heartbeat_map=hb)
    seen: list[tuple[float, float]] = []
    q = WorkQueueVal(
        "q",
        process=lambda item, handle: seen.append((handle.grace, handle.suicide_grace)),
        timeout=15,
        suicide_timeout=150,
    )
    pool.add_work_queue(q)
    pool.start()
    q.queue(1)
    assert pool.drain(q, timeout=JOIN)
    q.timeout = 7
    q.set_suicide_timeout(70)
    q.queue(2)
    assert pool.drain(q, timeout=JOIN)
    assert seen == [(15.0, 150.0), (7.0, 70.0)]


# --- the worker loop --------------------------------------------------------------------------


def test_round_robin_starts_at_queue_0_and_serves_each_queue_in_turn(tp: Harness) -> None:
    pool = tp.pool("rr", 1)
    order: list[str] = []
    queues = [
        WorkQueueVal(name, process=lambda item, handle: order.append(item[0]))
        for name in ("a", "b", "c")
    ]
    for q in queues:
        pool.add_work_queue(q)
    pool.pause_new()
    pool.start()
    for q in queues:
        for i in range(3):
            q.queue((q.name, i))
    pool.unpause()
    assert pool.drain(timeout=JOIN)
    assert order == list("abcabcabc")


@pytest.mark.parametrize("kind", [WorkQueueVal, WorkQueue, BatchWorkQueue, PointerWQ])
def test_queue_wakes_an_idle_pool_every_time(tp: Harness, kind: type) -> None:
    pool = tp.pool("wake", 3, idle_wait=3600)  # only queue() can wake a sleeping worker

    def process(unit: Any, handle: object) -> None:
        for event in unit if isinstance(unit, list) else [unit]:
            event.set()

    q = kind("q", process=process)
    pool.add_work_queue(q)
    pool.start()
    for round_ in range(300):
        event = threading.Event()
        q.queue(event)
        wait(event, f"round {round_}: a worker to wake for the item")


def test_an_item_queued_while_the_worker_decides_to_sleep_is_not_left_behind(
    tp: Harness,
) -> None:
    class Racy(WorkQueueVal):
        """A producer queues just after the worker found this queue empty, before the
        worker is listed as idle: the moment a lost wake-up would happen."""

        pending = [1, 2, 3]

        def dequeue_unit(self) -> Any:
            unit = super().dequeue_unit()
            if unit is NOTHING and self.pending:
                producer = threading.Thread(target=self.queue, args=(self.pending.pop(0),))
                producer.start()
                join(producer)
            return unit

    pool = tp.pool("racy", 1, idle_wait=3600)  # only queue() can wake a sleeping worker
    seen: list[int] = []
    q = Racy("q", process=record(seen))
    pool.add_work_queue(q)
    pool.start()
    q.queue(0)
    assert pool.drain(timeout=5), "an item was left behind by a sleeping pool"
    assert sorted(seen) == [0, 1, 2, 3]  # the worker may look before item 0 is queued


def test_two_producers_racing_idle_workers_lose_nothing(tp: Harness) -> None:
    pool = tp.pool("race", 2, idle_wait=3600)
    seen: list[int] = []
    q = WorkQueueVal("q", process=record(seen))
    pool.add_work_queue(q)
    pool.start()
    for round_ in range(200):
        producers = [threading.Thread(target=q.queue, args=(round_ * 2 + p,)) for p in range(2)]
        for t in producers:
            t.start()
        for t in producers:
            join(t)
        assert pool.drain(timeout=JOIN), f"round {round_}: an item was left behind"
    assert sorted(seen) == list(range(400))


def test_finish_runs_with_the_pool_lock_held(tp: Harness) -> None:
    pool = tp.pool("locked", 2)
    held: list[list[str]] = []
    q = WorkQueue(
        "q",
        process=lambda item, handle: None,
        finish=lambda item: held.append([h.name for h in lockdep.held_locks()]),
    )
    pool.add_work_queue(q)
    pool.start()
    q.queue(object())
    assert pool.drain(timeout=JOIN)
    assert held == [["ThreadPool::locked"]]


def test_process_runs_without_the_pool_lock(tp: Harness) -> None:
    pool = tp.pool("unlocked", 1)
    held: list[list[str]] = []
    q = WorkQueue("q", process=lambda item, handle: held.append(list(lockdep.held_locks())))
    pool.add_work_queue(q)
    pool.start()
    q.queue(object())
    assert pool.drain(timeout=JOIN)
    assert held == [[]]


def test_lockdep_sees_an_inversion_through_the_pool_lock(tp: Harness) -> None:
    pool = tp.pool("inv", 1)
    user = lockdep.Mutex("user_lock")

    def finish(item: object) -> None:
        with user:  # pool lock -> user_lock
            pass

    q = WorkQueue("q", process=lambda item, handle: None, finish=finish)
    pool.add_work_queue(q)
    pool.start()
    q.queue(object())
    assert pool.drain(timeout=JOIN)
    with user:
        with pytest.raises(lockdep.LockOrderError):
            pool.stats()  # user_lock -> pool lock: closes the cycle


# --- pause ------------------------------------------------------------------------------------


def test_pause_waits_for_the_item_in_flight(tp: Harness) -> None:
    pool = tp.pool("pause", 2)
    started, release = tp.gate(), tp.gate()
    q = WorkQueueVal("q", process=blocking(started, release))
    pool.add_work_queue(q)
    pool.start()
    q.queue(1)
    wait(started, "the item to start")
    pauser = threading.Thread(target=pool.pause)
    pauser.start()
    pauser.join(0.2)
    assert pauser.is_alive(), "pause() returned while an item was in flight"
    release.set()
    join(pauser)
    assert pool.stats()["threads_busy"] == 0
    pool.unpause()


def test_paused_pool_hands_out_nothing_until_unpaused(tp: Harness) -> None:
    pool = tp.pool("pause", 2)
    done = threading.Event()
    q = WorkQueueVal("q", process=lambda item, handle: done.set())
    pool.add_work_queue(q)
    pool.start()
    pool.pause()
    q.queue(1)
    assert not done.wait(0.2), "a paused pool processed an item"
    assert pool.paused
    pool.unpause()
    wait(done, "the item after unpause")


def test_pause_new_does_not_wait_for_the_item_in_flight(tp: Harness) -> None:
    pool = tp.pool("pause_new", 1)
    started, release = tp.gate(), tp.gate()
    q = WorkQueueVal("q", process=blocking(started, release))
    pool.add_work_queue(q)
    pool.start()
    q.queue(1)
    wait(started, "the item to start")
    pool.pause_new()  # returns although the item is still in process
    assert pool.stats()["threads_busy"] == 1
    release.set()
    pool.unpause()


def test_pauses_nest(tp: Harness) -> None:
    pool = tp.pool("nest", 1)
    pool.start()
    pool.pause()
    pool.pause_new()
    pool.unpause()
    assert pool.paused and pool.stats()["pause_depth"] == 1
    pool.unpause()
    assert not pool.paused


def test_unpause_without_pause_is_an_error(tp: Harness) -> None:
    pool = tp.pool("np", 1)
    with pytest.raises(RuntimeError, match="not paused"):
        pool.unpause()


# --- drain ------------------------------------------------------------------------------------


def test_drain_of_one_queue_waits_only_for_its_own_items(tp: Harness) -> None:
    pool = tp.pool("drain", 2)
    started, release = tp.gate(), tp.gate()
    slow = WorkQueueVal("slow", process=blocking(started, release))
    seen: list[int] = []
    fast = WorkQueueVal("fast", process=record(seen))
    pool.add_work_queue(slow)
    pool.add_work_queue(fast)
    pool.start()
    slow.queue(0)
    wait(started, "the slow item to start")
    for i in range(100):
        fast.queue(i)
    assert pool.drain(fast, timeout=JOIN)  # returns while slow's item still blocks
    assert sorted(seen) == list(range(100))
    assert pool.stats()["queues"]["slow"]["in_flight"] == 1
    assert not pool.drain(timeout=0.05), "drain() of the pool ignored the slow item"
    release.set()
    assert pool.drain(timeout=JOIN)


def test_queue_drain_is_the_pools_drain_of_that_queue(tp: Harness) -> None:
    pool = tp.pool("qdrain", 2)
    seen: list[int] = []
    q = WorkQueueVal("q", process=record(seen))
    pool.add_work_queue(q)
    pool.start()
    for i in range(50):
        q.queue(i)
    assert q.drain(timeout=JOIN)
    assert sorted(seen) == list(range(50))


def test_drain_of_a_paused_pool_with_items_queued_raises(tp: Harness) -> None:
    pool = tp.pool("pdrain", 2)
    q = WorkQueueVal("q", process=lambda item, handle: None)
    pool.add_work_queue(q)
    pool.start()
    pool.pause()
    q.queue(1)
    with pytest.raises(RuntimeError, match=r"would never end.*paused"):
        pool.drain()
    with pytest.raises(RuntimeError, match="would never end: work is queued in queue 'q'"):
        pool.drain(q)
    pool.unpause()
    assert pool.drain(timeout=JOIN)


def test_drain_of_a_paused_pool_with_nothing_queued_returns(tp: Harness) -> None:
    pool = tp.pool("pdrain", 2)
    pool.add_work_queue(WorkQueueVal("q", process=lambda item, handle: None))
    pool.start()
    pool.pause()
    assert pool.drain(timeout=JOIN)
    pool.unpause()


def test_drain_with_work_nobody_will_do_raises(tp: Harness) -> None:
    pool = tp.pool("nodrain", 0)
    q = WorkQueueVal("q", process=lambda item, handle: None)
    pool.add_work_queue(q)
    q.queue(1)
    with pytest.raises(RuntimeError, match="not running"):
        pool.drain()
    pool.start()
    with pytest.raises(RuntimeError, match="no threads"):
        pool.drain()


def test_drain_times_out(tp: Harness) -> None:
    pool = tp.pool("tdrain", 1)
    started, release = tp.gate(), tp.gate()
    q = WorkQueueVal("q", process=blocking(started, release))
    pool.add_work_queue(q)
    pool.start()
    q.queue(1)
    wait(started, "the item to start")
    assert pool.drain(timeout=0.05) is False
    release.set()


def test_drain_of_a_queue_of_another_pool_is_an_error(tp: Harness) -> None:
    pool = tp.pool("a", 1)
    with pytest.raises(ValueError, match="not attached to pool 'a'"):
        pool.drain(WorkQueueVal("q", process=lambda item, handle: None))
    with pytest.raises(TypeError, match="work queue or None"):
        pool.drain("q")  # type: ignore[arg-type]


@pytest.mark.parametrize("call", ["drain", "pause", "stop"])
def test_waiting_calls_from_a_worker_raise(tp: Harness, call: str) -> None:
    pool = tp.pool("self", 1)
    errors: list[BaseException] = []

    def process(item: Any, handle: object) -> None:
        try:
            getattr(pool, call)()
        except RuntimeError as exc:
            errors.append(exc)

    q = WorkQueueVal("q", process=process)
    pool.add_work_queue(q)
    pool.start()
    q.queue(1)
    assert pool.drain(timeout=JOIN)
    assert len(errors) == 1
    assert f"{call}() called from a worker of pool 'self'" in str(errors[0])


# --- stop and start ---------------------------------------------------------------------------


def test_stop_clear_after_returns_the_unprocessed_items_and_logs_their_count(
    tp: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    pool = tp.pool("stop", 2)
    val = WorkQueueVal("val", process=lambda item, handle: None)
    ref = WorkQueue("ref", process=lambda item, handle: None)
    batch = BatchWorkQueue("batch", process=lambda items, handle: None)
    ptr = PointerWQ("ptr", process=lambda item, handle: None)
    empty = WorkQueueVal("empty", process=lambda item, handle: None)
    for q in (val, ref, batch, ptr, empty):
        pool.add_work_queue(q)
    pool.start()
    pool.pause()
    objs = [object(), object()]
    for i in range(3):
        val.queue(i)
        batch.queue(i)
    for o in objs:
        ref.queue(o)
        ptr.queue(o)
    with caplog.at_level(logging.INFO, logger="threadpool"):
        cleared = pool.stop()
    assert cleared == {"val": [0, 1, 2], "ref": objs, "batch": [0, 1, 2], "ptr": objs}
    assert "10 unprocessed items cleared" in caplog.text
    assert all(not q.has_work() for q in (val, ref, batch, ptr))


def test_stop_without_clear_keeps_items_for_the_next_start(tp: Harness) -> None:
    pool = tp.pool("keep", 2)
    seen: list[int] = []
    q = WorkQueueVal("q", process=record(seen))
    pool.add_work_queue(q)
    pool.start()
    pool.pause()
    for i in range(5):
        q.queue(i)
    assert pool.stop(clear_after=False) == {}
    assert pool.stats()["queues"]["q"]["items"] == 5
    pool.start()
    pool.unpause()
    assert pool.drain(timeout=JOIN)
    assert sorted(seen) == list(range(5))


def test_stop_then_start_works(tp: Harness) -> None:
    pool = tp.pool("restart", 3)
    seen: list[int] = []
    q = WorkQueueVal("q", process=record(seen))
    pool.add_work_queue(q)
    for round_ in range(3):
        pool.start()
        assert pool.wait_for_threads(timeout=JOIN)
        for i in range(10):
            q.queue(round_ * 10 + i)
        assert pool.drain(timeout=JOIN)
        pool.stop()
        assert pool.stats()["threads"] == 0 and not pool.running
    assert sorted(seen) == list(range(30))


def test_stop_lets_the_item_in_flight_finish(tp: Harness) -> None:
    pool = tp.pool("finish", 1)
    started, release = tp.gate(), tp.gate()
    finished = threading.Event()
    q = WorkQueueVal("q", process=blocking(started, release), finish=lambda item: finished.set())
    pool.add_work_queue(q)
    pool.start()
    q.queue(1)
    wait(started, "the item to start")
    stopper = threading.Thread(target=pool.stop)
    stopper.start()
    stopper.join(0.1)
    assert stopper.is_alive(), "stop() returned before the item in flight finished"
    release.set()
    join(stopper)
    assert finished.is_set()


def test_start_twice_is_an_error(tp: Harness) -> None:
    pool = tp.pool("twice", 1)
    pool.start()
    with pytest.raises(RuntimeError, match="already running"):
        pool.start()


# --- queues while running ---------------------------------------------------------------------


def test_queues_added_and_removed_while_running(tp: Harness) -> None:
    pool = tp.pool("dyn", 2)
    pool.start()
    seen: list[int] = []
    q = WorkQueueVal("q", process=record(seen))
    q.queue(1)  # queued before the queue is attached: processed once it is
    pool.add_work_queue(q)
    assert pool.drain(timeout=JOIN)
    pool.remove_work_queue(q)
    assert q.pool is None
    q.queue(2)  # stays in the detached queue
    assert q.has_work()
    pool.add_work_queue(q)
    assert pool.drain(timeout=JOIN)
    assert seen == [1, 2]


def test_add_work_queue_rejects_duplicates_and_strangers(tp: Harness) -> None:
    a, b = tp.pool("a", 1), tp.pool("b", 1)
    q = WorkQueueVal("q", process=lambda item, handle: None)
    a.add_work_queue(q)
    with pytest.raises(ValueError, match="already attached to this pool"):
        a.add_work_queue(q)
    with pytest.raises(ValueError, match="already attached to <ThreadPool 'a'"):
        b.add_work_queue(q)
    with pytest.raises(ValueError, match="already has a queue named 'q'"):
        a.add_work_queue(WorkQueue("q", process=lambda item, handle: None))
    with pytest.raises(TypeError, match="needs a work queue"):
        a.add_work_queue("q")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not attached to pool 'b'"):
        b.remove_work_queue(q)


def test_remove_pointer_queue_while_its_items_process_is_an_error(tp: Harness) -> None:
    pool = tp.pool("ptr", 1)
    started, release = tp.gate(), tp.gate()
    q = PointerWQ("p", process=blocking(started, release))
    pool.add_work_queue(q)
    pool.start()
    q.queue(object())
    wait(started, "the item to start")
    with pytest.raises(RuntimeError, match="while its items process"):
        pool.remove_work_queue(q)
    release.set()
    assert q.drain(timeout=JOIN)
    pool.remove_work_queue(q)


# --- failures in handlers ---------------------------------------------------------------------


def test_a_raising_handler_is_logged_counted_finished_and_its_worker_lives(
    tp: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    pool = tp.pool("fail", 1)
    workers: list[str] = []
    finished: list[tuple[int, BaseException | None]] = []

    def process(item: int, handle: object) -> None:
        workers.append(threading.current_thread().name)
        if item % 2:
            raise ValueError(f"bad item {item}")

    q = WorkQueueVal("q", process=process, finish=lambda item: finished.append((item, q.error)))
    pool.add_work_queue(q)
    pool.start()
    with caplog.at_level(logging.ERROR, logger="threadpool"):
        for i in range(4):
            q.queue(i)
        assert pool.drain(timeout=JOIN)
    assert workers == ["fail thread 0"] * 4, "the worker died or was replaced"
    assert [(i, type(e).__name__ if e else None) for i, e in finished] == [
        (0, None),
        (1, "ValueError"),
        (2, None),
        (3, "ValueError"),
    ]
    stats = pool.stats()["queues"]["q"]
    assert (stats["processed"], stats["failed"]) == (4, 2)
    failures = [r for r in caplog.records if r.exc_info]
    assert len(failures) == 2
    assert "process step of queue 'q' raised on fail thread 0" in failures[0].getMessage()
    assert "ValueError: bad item 1" in caplog.text  # the traceback


def test_a_raising_finish_is_logged_and_counted(
    tp: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    pool = tp.pool("ffail", 1)

    def finish(item: object) -> None:
        raise KeyError("finish broke")

    q = WorkQueue("q", process=lambda item, handle: None, finish=finish)
    pool.add_work_queue(q)
    pool.start()
    with caplog.at_level(logging.ERROR, logger="threadpool"):
        q.queue(object())
        q.queue(object())
        assert pool.drain(timeout=JOIN)
    stats = pool.stats()["queues"]["q"]
    assert (stats["processed"], stats["failed"], stats["in_flight"]) == (2, 2, 0)
    assert "finish step of queue 'q' raised" in caplog.text
    assert "finish broke" in caplog.text


def test_a_raising_dequeue_hook_is_logged_and_the_worker_goes_on(
    tp: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(WorkQueueVal):
        armed = True

        def _dequeue(self) -> Any:
            if self.armed:
                self.armed = False
                raise OSError("storage hiccup")
            return super()._dequeue()

    pool = tp.pool("dfail", 1, idle_wait=0.05)
    seen: list[int] = []
    q = Broken("q", process=record(seen))
    pool.add_work_queue(q)
    pool.start()
    with caplog.at_level(logging.ERROR, logger="threadpool"):
        q.queue(1)
        assert pool.drain(timeout=JOIN)
    assert seen == [1]
    assert "dequeue step of queue 'q' raised" in caplog.text


def test_a_worker_killed_by_a_broken_queue_leaves_the_pool_usable(
    tp: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(WorkQueueVal):
        batch = True  # but its units have no len(): the worker loop itself fails

        def dequeue_unit(self) -> Any:
            unit = super().dequeue_unit()
            return unit if unit is NOTHING else 42

    pool = tp.pool("broken", 2)
    broken = Broken("broken", process=lambda item, handle: None)
    seen: list[int] = []
    good = WorkQueueVal("good", process=record(seen))
    pool.add_work_queue(broken)
    pool.add_work_queue(good)
    pool.start()
    assert pool.wait_for_threads(timeout=JOIN)
    with caplog.at_level(logging.ERROR, logger="threadpool"):
        broken.queue(1)
        assert pool.wait_for_threads(count=1, timeout=JOIN), "the worker did not die"
    assert "broken thread" in caplog.text and "died" in caplog.text
    good.queue(7)
    assert pool.drain(good, timeout=JOIN)  # the pool lock was not left held
    assert seen == [7]
    pool.stop()


def test_control_calls_from_a_finish_step(tp: Harness) -> None:
    pool = tp.pool("ctl", 2)
    extra = WorkQueueVal("extra", process=lambda item, handle: None)
    results: dict[str, Any] = {}

    def finish(item: str) -> None:  # runs with the pool lock held
        results["stats"] = pool.stats()["queues"]["q"]["in_flight"]
        pool.set_num_threads(3)
        pool.pause_new()
        pool.unpause()
        pool.add_work_queue(extra)
        pool.remove_work_queue(extra)
        results["qstats"] = q.stats()["kind"]

    q = WorkQueueVal("q", process=lambda item, handle: None, finish=finish)
    pool.add_work_queue(q)
    pool.start()
    q.queue("x")
    assert pool.drain(timeout=JOIN)
    assert results == {"stats": 1, "qstats": "value"}
    assert pool.num_threads == 3 and not pool.paused and pool.work_queues == [q]


# --- statistics -------------------------------------------------------------------------------


def test_stats_read_api(tp: Harness) -> None:
    pool = tp.pool("stats", 2)
    started, release = tp.gate(), tp.gate()
    slow = WorkQueueVal("slow", process=blocking(started, release), timeout=3)
    batch = BatchWorkQueue("batch", process=lambda items, handle: None, batch_size=4)
    pool.add_work_queue(slow)
    pool.add_work_queue(batch)
    pool.start()
    slow.queue(1)
    wait(started, "the slow item to start")
    for i in range(10):
        batch.queue(i)
    assert pool.drain(batch, timeout=JOIN)
    stats = pool.stats()
    json.dumps(stats)  # JSON-serialisable
    assert {k: stats[k] for k in stats if k != "queues"} == {
        "name": "stats",
        "running": True,
        "threads": 2,
        "threads_target": 2,
        "threads_busy": 1,
        "paused": False,
        "pause_depth": 0,
        "elastic": False,
        "min_threads": None,
        "max_threads": None,
        "idle_timeout": 30.0,
        "locked_paths": False,
    }
    s = stats["queues"]["slow"]
    assert (s["kind"], s["items"], s["in_flight"], s["processed"], s["timeout"]) == (
        "value",
        0,
        1,
        0,
        3.0,
    )
    b = stats["queues"]["batch"]
    assert (b["kind"], b["items"], b["in_flight"], b["processed"], b["failed"]) == (
        "batch",
        0,
        0,
        10,
        0,
    )
    assert b["busy_seconds"] >= 0
    assert b["item_duration_seconds"] is None and b["queue_wait_seconds"] is None
    assert batch.stats() == b
    release.set()


# --- OS threads -------------------------------------------------------------------------------


def thread_facts(pool: ThreadPool) -> list[dict[str, Any]]:
    facts: list[dict[str, Any]] = []
    barrier = threading.Barrier(pool.num_threads, timeout=JOIN)

    def process(item: Any, handle: object) -> None:
        facts.append(
            {
                "name": threading.current_thread().name,
                "os_name": _osthread.get_thread_name(),
                "cpus": os.sched_getaffinity(0),
                "ioprio": _osthread.get_io_priority(),
            }
        )
        barrier.wait()  # every worker takes one item

    q = WorkQueueVal("q", process=process)
    pool.add_work_queue(q)
    pool.start()
    for i in range(pool.num_threads):
        q.queue(i)
    assert pool.drain(timeout=JOIN)
    return sorted(facts, key=lambda f: f["name"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux thread facilities")
def test_workers_name_their_os_threads_and_apply_affinity_and_io_priority(tp: Harness) -> None:
    cpu = min(os.sched_getaffinity(0))
    pool = tp.pool(
        "osd_tp",
        2,
        thread_name="a_long_thread_name",
        cpu_affinity=[cpu],
        ioprio=("best-effort", 6),
    )
    facts = thread_facts(pool)
    assert [f["name"] for f in facts] == ["osd_tp thread 0", "osd_tp thread 1"]
    assert [f["os_name"] for f in facts] == ["a_long_thread-0", "a_long_thread-1"]
    assert all(f["cpus"] == {cpu} for f in facts)
    assert all(f["ioprio"] in (("best-effort", 6), None) for f in facts)


# --- bad arguments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"name": ""}, TypeError, "ThreadPool name must be a non-empty str"),
        ({"name": 3}, TypeError, "ThreadPool name must be a non-empty str"),
        ({"num_threads": -1}, ValueError, "num_threads must be an int >= 0, got -1"),
        ({"num_threads": "2"}, TypeError, "num_threads must be an int >= 0"),
        ({"thread_name": ""}, TypeError, "thread name must be a non-empty str"),
        ({"heartbeat_map": object()}, TypeError, "heartbeat_map must be a HeartbeatMap"),
        ({"cpu_affinity": "0"}, TypeError, "cpu_affinity must be a non-empty iterable"),
        ({"cpu_affinity": [-1]}, ValueError, "CPU numbers"),
        ({"cpu_affinity": []}, ValueError, "CPU numbers"),
        ({"ioprio": "idle"}, TypeError, "ioprio must be \\(class, level\\)"),
        ({"ioprio": ("fast", 0)}, ValueError, "'realtime', 'best-effort', 'idle'"),
        ({"ioprio": ("idle", 8)}, ValueError, "level 0..7"),
        ({"idle_wait": 0}, ValueError, "idle_wait must be a number of seconds > 0"),
        ({"idle_grace": -1}, ValueError, "idle_grace must be a finite number of seconds >= 0"),
        ({"idle_grace": "1"}, TypeError, "idle_grace must be a number of seconds"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict[str, Any], error: type, message: str) -> None:
    args: dict[str, Any] = {"name": "tp", "num_threads": 1, **kwargs}
    with pytest.raises(error, match=message):
        ThreadPool(**args)


def test_stop_rejects_a_non_bool_clear_after(tp: Harness) -> None:
    with pytest.raises(TypeError, match="clear_after must be True or False"):
        tp.pool("x", 1).stop(clear_after=1)  # type: ignore[arg-type]
