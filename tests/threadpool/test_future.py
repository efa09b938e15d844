"""CallFuture behaves as CPython's Future, and makes its condition only for a waiter."""

from __future__ import annotations

import asyncio
import logging
import threading
import unittest
from concurrent import futures
from concurrent.futures import Future
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threadpool.future import CallFuture

from .conftest import JOIN

# --- the model: the same operations on a Future and a CallFuture, the same outcomes ------------

OPS = st.lists(
    st.sampled_from(
        [
            "cancel",
            "cancelled",
            "running",
            "done",
            "set_running_or_notify_cancel",
            "set_result",
            "set_exception",
            "result",
            "exception",
            "add_done_callback",
            "repr",
        ]
    ),
    max_size=12,
)


def apply(future: Future[Any], op: str, calls: list[tuple[int, bool, bool]]) -> object:
    """Run one operation; its outcome as a comparable value (an exception by its type)."""
    try:
        if op == "set_result":
            future.set_result(op)
            return None
        if op == "set_exception":
            future.set_exception(ValueError(op))
            return None
        if op in ("result", "exception"):
            out = getattr(future, op)(timeout=0)
            return repr(out) if isinstance(out, BaseException) else out
        if op == "add_done_callback":
            n = len(calls)
            future.add_done_callback(lambda f: calls.append((n, f.done(), f.cancelled())))
            return None
        if op == "repr":
            return repr(future).split(" at ")[1].split(" ", 1)[1]  # the state part
        return getattr(future, op)()
    except Exception as exc:
        return type(exc)


@given(OPS)
def test_call_future_follows_future_step_for_step(ops: list[str]) -> None:
    theirs: Future[Any] = Future()
    ours: CallFuture[Any] = CallFuture()
    their_calls: list[tuple[int, bool, bool]] = []
    our_calls: list[tuple[int, bool, bool]] = []
    for op in ops:
        assert apply(ours, op, our_calls) == apply(theirs, op, their_calls), op
        assert ours._state == theirs._state
        assert our_calls == their_calls


def test_a_future_nobody_waits_for_makes_no_condition() -> None:
    f: CallFuture[int] = CallFuture()
    assert f.set_running_or_notify_cancel()
    f.set_result(1)
    assert f.result() == 1 and f.done() and f.exception() is None
    assert f._cond is None and f._wait_list is None and f._callbacks is None


def test_result_waits_for_a_result_set_in_another_thread() -> None:
    f: CallFuture[str] = CallFuture()
    waiting = threading.Event()
    got: list[str] = []

    def waiter() -> None:
        waiting.set()
        got.append(f.result(timeout=JOIN))

    t = threading.Thread(target=waiter)
    t.start()
    assert waiting.wait(JOIN)
    f.set_running_or_notify_cancel()
    f.set_result("done")
    t.join(JOIN)
    assert not t.is_alive() and got == ["done"]


def test_exception_and_cancel_wake_waiters() -> None:
    raised: CallFuture[None] = CallFuture()
    cancelled: CallFuture[None] = CallFuture()
    outcomes: list[object] = []
    started = threading.Barrier(3, timeout=JOIN)

    def wait_exception() -> None:
        started.wait()
        outcomes.append(raised.exception(timeout=JOIN))

    def wait_cancel() -> None:
        started.wait()
        try:
            cancelled.result(timeout=JOIN)
        except futures.CancelledError:
            outcomes.append("cancelled")

    threads = [threading.Thread(target=wait_exception), threading.Thread(target=wait_cancel)]
    for t in threads:
        t.start()
    started.wait()
    error = KeyError("k")
    raised.set_exception(error)
    assert cancelled.cancel()
    for t in threads:
        t.join(JOIN)
        assert not t.is_alive()
    assert sorted(outcomes, key=str) == sorted([error, "cancelled"], key=str)


def test_wait_and_as_completed_see_call_futures_finish() -> None:
    fs: list[CallFuture[int]] = [CallFuture() for _ in range(20)]

    def finish() -> None:
        for i, f in enumerate(fs):
            if i % 5 == 4:  # cancelled, then found so by the executor: waiters notified
                assert f.cancel()
                assert not f.set_running_or_notify_cancel()
                continue
            assert f.set_running_or_notify_cancel()
            if i % 3:
                f.set_result(i)
            else:
                f.set_exception(ValueError(i))

    t = threading.Thread(target=finish)
    t.start()
    seen = list(futures.as_completed(fs, timeout=JOIN))
    t.join(JOIN)
    assert not t.is_alive()
    assert set(seen) == set(fs)
    done, not_done = futures.wait(fs, timeout=JOIN)
    assert done == set(fs) and not not_done


def test_wait_first_completed_is_woken_by_a_call_future() -> None:
    fs: list[CallFuture[int]] = [CallFuture() for _ in range(3)]
    timer = threading.Timer(0.01, lambda: fs[1].set_result(1))
    timer.start()
    done, not_done = futures.wait(fs, timeout=JOIN, return_when=futures.FIRST_COMPLETED)
    timer.join(JOIN)
    assert done == {fs[1]} and not_done == {fs[0], fs[2]}


def test_asyncio_wrap_future_takes_a_call_future() -> None:
    async def main() -> tuple[int, bool]:
        f: CallFuture[int] = CallFuture()
        loop = asyncio.get_running_loop()
        loop.call_soon(threading.Thread(target=f.set_result, args=(7,)).start)
        result = await asyncio.wait_for(asyncio.wrap_future(f), JOIN)
        g: CallFuture[int] = CallFuture()
        task = asyncio.ensure_future(asyncio.wrap_future(g))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):  # the cancel reaches g in a callback of the loop
            if g.cancelled():
                break
            await asyncio.sleep(0)
        return result, g.cancelled()

    assert asyncio.run(main()) == (7, True)


def test_a_done_callback_runs_once_after_the_result() -> None:
    f: CallFuture[int] = CallFuture()
    seen: list[int] = []
    f.add_done_callback(lambda g: seen.append(g.result()))
    f.set_running_or_notify_cancel()
    f.set_result(3)
    f.add_done_callback(lambda g: seen.append(-g.result()))  # done: runs at once
    assert seen == [3, -3]


def test_cpythons_future_tests_pass_against_call_future(monkeypatch: pytest.MonkeyPatch) -> None:
    """CPython's own FutureTests (Lib/test/test_concurrent_futures/test_future.py, on the
    CPythons whose test package has it), with Future replaced by CallFuture."""
    mod = pytest.importorskip("test.test_concurrent_futures.test_future")

    def create_future(state: str = "PENDING", exception: Any = None, result: Any = None) -> Any:
        f: CallFuture[Any] = CallFuture()
        f._state, f._exception, f._result = state, exception, result
        return f

    monkeypatch.setattr(mod, "Future", CallFuture)
    monkeypatch.setattr(mod, "create_future", create_future)
    # Two tests read what a raising callback logs from stderr, where logging writes it
    # when the logger has no handler; pytest's capture gives it one.
    logger = logging.getLogger("concurrent.futures")
    logger.addHandler(logging.lastResort)  # type: ignore[arg-type]
    try:
        suite = unittest.TestLoader().loadTestsFromTestCase(mod.FutureTests)
        result = unittest.TextTestRunner(verbosity=0).run(suite)
    finally:
        logger.removeHandler(logging.lastResort)  # type: ignore[arg-type]
    assert result.testsRun >= 20
    assert result.wasSuccessful(), result.failures + result.errors
