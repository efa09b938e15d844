"""threadpool.Executor: ThreadPoolExecutor's behaviour (CPython's own tests run it too:
tests/cpython_executor.py), calls with deadlines and bounds, executors on a shared pool,
and asyncio."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, as_completed, wait
from concurrent.futures import TimeoutError as FuturesTimeout
from typing import Any

import pytest

from threadpool import (
    CallQueue,
    DeadlineExpired,
    Executor,
    QueueFull,
    ThreadPool,
)

from .conftest import JOIN, FakeClock, Harness, join
from .conftest import wait as wait_event

NEAR = 0.02


@pytest.fixture
def executors() -> Iterator[list[Executor]]:
    """Executors made by a test, shut down at its end whatever happens."""
    made: list[Executor] = []
    yield made
    for ex in made:
        ex.shutdown(wait=True, cancel_futures=True)


def make(executors: list[Executor], *args: Any, **kw: Any) -> Executor:
    ex = Executor(*args, **kw)
    executors.append(ex)
    return ex


class Gate:
    """A call that blocks until the gate opens, and says when it started."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.open = threading.Event()

    def __call__(self, value: Any = None) -> Any:
        self.started.set()
        assert self.open.wait(JOIN)
        return value


# --- ThreadPoolExecutor's behaviour ------------------------------------------------------


def test_submit_map_and_results(executors: list[Executor]) -> None:
    ex = make(executors, 4)
    assert ex.submit(pow, 2, 8).result(JOIN) == 256
    assert ex.submit(lambda x, y: x * y, 2, y=8).result(JOIN) == 16
    assert list(ex.map(pow, range(10), range(10), timeout=JOIN)) == [i**i for i in range(10)]
    assert list(ex.map(abs, range(-20, 0), chunksize=7)) == list(range(20, 0, -1))


def test_an_exception_goes_to_the_future_not_the_log(
    executors: list[Executor], caplog: pytest.LogCaptureFixture
) -> None:
    ex = make(executors, 2)
    with caplog.at_level(logging.DEBUG, logger="threadpool"):
        future = ex.submit(divmod, 1, 0)
        with pytest.raises(ZeroDivisionError):
            future.result(JOIN)
    assert "ZeroDivisionError" not in caplog.text
    ex.shutdown()
    stats = ex.queue.stats()
    assert stats["processed"] == 1 and stats["failed"] == 1


def test_done_callbacks_run_outside_the_pool_lock(executors: list[Executor]) -> None:
    ex = make(executors, 2)
    seen: list[tuple[Any, bool]] = []
    done = threading.Event()

    def callback(future: Any) -> None:
        seen.append((future.result(), ex.pool._state.lock.is_locked_by_me()))
        done.set()

    ex.submit(abs, -3).add_done_callback(callback)
    wait_event(done, "the done callback")
    assert seen == [(3, False)]


def test_wait_and_as_completed(executors: list[Executor]) -> None:
    ex = make(executors, 2)
    gate = Gate()
    slow = ex.submit(gate, "slow")
    fast = ex.submit(abs, -1)
    done, pending = wait([slow, fast], timeout=JOIN, return_when=FIRST_COMPLETED)
    assert done == {fast} and pending == {slow}
    gate.open.set()
    assert {f.result() for f in as_completed([slow, fast], timeout=JOIN)} == {"slow", 1}


def test_map_timeout_cancels_what_has_not_started(executors: list[Executor]) -> None:
    ex = make(executors, 1)
    gate = Gate()
    ran: list[str] = []
    first = ex.submit(gate)
    wait_event(gate.started, "the first call")
    results = ex.map(ran.append, ["second", "third"], timeout=0)
    with pytest.raises(FuturesTimeout):
        next(results)
    results.close()
    gate.open.set()
    first.result(JOIN)
    ex.shutdown()
    assert ran == []


def test_shutdown_refuses_new_calls_and_runs_the_queued_ones(executors: list[Executor]) -> None:
    ex = make(executors, 2)
    futures = [ex.submit(abs, -i) for i in range(50)]
    ex.shutdown(wait=True)
    assert [f.result() for f in futures] == list(range(50))
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        ex.submit(abs, 1)
    assert ex._threads == set()


def test_shutdown_cancel_futures_cancels_the_queued_calls(executors: list[Executor]) -> None:
    ex = make(executors, 1)
    gate = Gate()
    first = ex.submit(gate)
    wait_event(gate.started, "the first call")
    queued = [ex.submit(abs, i) for i in range(10)]
    stopper = threading.Thread(target=ex.shutdown, kwargs={"cancel_futures": True})
    stopper.start()
    gate.open.set()
    join(stopper)
    assert first.result(JOIN) is None
    assert all(f.cancelled() for f in queued)


def test_the_context_manager_waits(executors: list[Executor]) -> None:
    with Executor(3) as ex:
        futures = [ex.submit(abs, -i) for i in range(20)]
    assert all(f.done() for f in futures)
    assert ex._threads == set()


def test_threads_start_on_demand_up_to_max_workers_and_are_named(
    executors: list[Executor],
) -> None:
    ex = make(executors, 3, thread_name_prefix="Special")
    gate = Gate()
    futures = [ex.submit(gate) for _ in range(20)]
    assert len(ex._threads) == 3  # grown by submit() itself
    assert all(re.fullmatch(r"Special_[0-2]", t.name) for t in ex._threads)
    gate.open.set()
    wait(futures, timeout=JOIN)
    default = make(executors, 1)
    default.submit(abs, 1).result(JOIN)
    assert all(re.fullmatch(r"ThreadPoolExecutor-\d+_0", t.name) for t in default._threads)


def test_max_workers_defaults_and_errors(executors: list[Executor]) -> None:
    import os

    count = getattr(os, "process_cpu_count", os.cpu_count)() or 1
    assert make(executors)._max_workers == min(32, count + 4)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="max_workers must be greater than 0"):
            Executor(bad)
    with pytest.raises(TypeError, match="initializer must be a callable"):
        Executor(1, initializer=3)  # type: ignore[arg-type]


def test_the_initializer_runs_in_each_thread_before_its_calls(executors: list[Executor]) -> None:
    local = threading.local()

    def init(value: str) -> None:
        local.value = value

    ex = make(executors, 2, initializer=init, initargs=("ready",))
    results = [ex.submit(lambda: local.value).result(JOIN) for _ in range(5)]
    assert results == ["ready"] * 5


def test_a_failing_initializer_breaks_the_executor(
    executors: list[Executor], caplog: pytest.LogCaptureFixture
) -> None:
    def init() -> None:
        raise ValueError("no")

    ex = make(executors, 1, initializer=init)
    with caplog.at_level(logging.CRITICAL, logger="concurrent.futures"):
        future = ex.submit(abs, 1)
        with pytest.raises(BrokenExecutor):
            future.result(JOIN)
    assert "Exception in initializer" in caplog.text
    assert ex._broken
    with pytest.raises(BrokenExecutor):
        ex.submit(abs, 1)


def test_a_collected_executor_lets_its_threads_go(executors: list[Executor]) -> None:
    ex = Executor(3)
    futures = [ex.submit(abs, -i) for i in range(30)]
    threads = ex._threads
    del ex
    gc.collect()
    for t in threads:
        join(t)
    assert [f.result() for f in futures] == list(range(30))


# --- beyond it: deadlines, bounds, shared pools ------------------------------------------


def test_a_call_not_started_by_its_deadline_fails_with_deadline_expired(
    executors: list[Executor],
) -> None:
    ex = make(executors, 1)
    gate = Gate()
    ex.submit(gate)
    wait_event(gate.started, "the blocking call")
    ran: list[str] = []
    late = ex.submit_within(NEAR, ran.append, "late")
    soon = ex.submit_within(3600, ran.append, "in time")
    done = threading.Event()
    threading.Timer(NEAR * 2, done.set).start()
    wait_event(done, "the near deadline to pass")
    gate.open.set()
    with pytest.raises(DeadlineExpired):
        late.result(JOIN)
    assert soon.result(JOIN) is None
    assert ran == ["in time"]
    assert ex.queue.stats()["expired"] == 1


def busy(ex: Executor, gates: list[Gate]) -> None:
    """Occupy the executor's one worker with a gated call."""
    gate = Gate()
    gates.append(gate)
    ex.submit(gate)
    wait_event(gate.started, "the blocking call")


def test_a_bounded_executor_follows_its_policy(executors: list[Executor]) -> None:
    gates: list[Gate] = []
    rejecting = make(executors, 1, max_items=1)
    busy(rejecting, gates)
    rejecting.submit(abs, 1)  # queued: the one place
    with pytest.raises(QueueFull):
        rejecting.submit(abs, 2)
    dropping = make(executors, 1, max_items=1, policy="drop_oldest")
    busy(dropping, gates)
    oldest = dropping.submit(abs, 1)
    newest = dropping.submit(abs, 2)
    with pytest.raises(QueueFull, match="dropped for a newer call"):
        oldest.result(JOIN)
    callers = make(executors, 1, max_items=1, policy="caller_runs")
    busy(callers, gates)
    callers.submit(abs, 1)
    here = callers.submit(threading.get_ident)
    assert here.done() and here.result() == threading.get_ident()  # ran in the submitter
    for gate in gates:
        gate.open.set()
    assert newest.result(JOIN) == 2


def test_an_executor_on_a_shared_pool(tp: Harness) -> None:
    pool = tp.pool("shared", 2)
    pool.start()
    queue = CallQueue("rpc", max_items=100, deadline=3600)
    ex = pool.executor(queue)
    other = pool.executor()
    assert queue.pool is pool and other.queue.pool is pool and other.queue.name == "calls"
    names = {ex.submit(lambda: threading.current_thread().name).result(JOIN) for _ in range(20)}
    assert names <= {"shared thread 0", "shared thread 1"}
    assert pool.stats()["queues"]["rpc"]["processed"] == 20
    other.shutdown()  # its queue goes; the pool and the other executor stay
    assert other.queue.pool is None and pool.running
    assert ex.submit(abs, -5).result(JOIN) == 5
    ex.shutdown()
    assert queue.pool is pool  # given, not made: it stays attached
    with pytest.raises(RuntimeError):
        ex.submit(abs, 1)


def test_a_hung_call_shows_as_an_unhealthy_worker(tp: Harness, clock: FakeClock) -> None:
    hb = tp.hb_map("rpc", clock=clock)
    pool = tp.pool("rpc", 1, heartbeat_map=hb)
    pool.start()
    ex = pool.executor(CallQueue("calls", timeout=5))
    gate = Gate()
    tp.gates.append(gate.open)
    future = ex.submit(gate)
    wait_event(gate.started, "the hung call")
    assert hb.is_healthy()
    clock.advance(6)
    assert not hb.is_healthy()
    assert hb.get_unhealthy_worker_names() == ["rpc thread 0"]
    gate.open.set()
    future.result(JOIN)


def test_pool_executor_refuses_a_queue_of_another_pool(tp: Harness) -> None:
    a, b = tp.pool("a", 1), tp.pool("b", 1)
    q = CallQueue()
    a.add_work_queue(q)
    with pytest.raises(ValueError, match="attached to another pool"):
        b.executor(q)
    with pytest.raises(TypeError, match="takes a CallQueue"):
        b.executor(3)


# --- asyncio -------------------------------------------------------------------------------


def test_run_in_executor_wrap_future_and_run(executors: list[Executor]) -> None:
    ex = make(executors, 2)

    async def main() -> tuple[Any, Any, Any]:
        loop = asyncio.get_running_loop()
        a = await loop.run_in_executor(ex, pow, 2, 10)
        b = await asyncio.wrap_future(ex.submit(abs, -7))
        c = await ex.run(divmod, 17, 5)
        return a, b, c

    assert asyncio.run(main()) == (1024, 7, (3, 2))


def test_cancelling_the_awaiting_task_cancels_a_queued_call(executors: list[Executor]) -> None:
    ex = make(executors, 1)
    gate = Gate()
    ran: list[str] = []

    async def main() -> None:
        blocker = ex.submit(gate)
        wait_event(gate.started, "the blocking call")
        task = asyncio.create_task(ex.run(ran.append, "never"))
        await asyncio.sleep(0)  # the task runs up to its await: the call is queued
        assert ex.queue.size() == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.open.set()
        await asyncio.wrap_future(blocker)

    asyncio.run(main())
    ex.shutdown()
    assert ran == []


def test_run_waits_for_room_off_the_loop(executors: list[Executor]) -> None:
    ex = make(executors, 1, max_items=1, policy="block")
    gate = Gate()

    async def main() -> list[Any]:
        blocker = ex.submit(gate)
        wait_event(gate.started, "the blocking call")
        ex.submit(abs, -1)  # the one place taken
        waiting = asyncio.create_task(ex.run(abs, -2))  # no room: waits in a thread
        ticks = 0
        while not waiting.done() and ticks < 3:
            await asyncio.sleep(0.01)  # the loop keeps running meanwhile
            ticks += 1
        assert ticks == 3
        gate.open.set()
        return [await waiting, await asyncio.wrap_future(blocker)]

    assert asyncio.run(main()) == [2, None]


def test_executor_on_a_pool_used_from_asyncio(tp: Harness) -> None:
    pool = tp.pool("aio", 2)
    pool.start()
    ex = pool.executor()

    async def main() -> list[int]:
        return list(await asyncio.gather(*(ex.run(abs, -i) for i in range(10))))

    assert asyncio.run(main()) == list(range(10))
    assert isinstance(ex.pool, ThreadPool) and ex.pool is pool
