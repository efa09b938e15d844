"""SharedMutex: readers/writer semantics, writer preference, and what lockdep checks."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

import lockdep
from tests.conftest import run_in_thread


def test_many_readers_or_one_writer() -> None:
    rw = lockdep.SharedMutex("rw")
    with rw.read():
        assert run_in_thread(rw.try_lock_shared) is True  # another reader may join
        assert run_in_thread(rw.try_lock) is False  # a writer may not
        rw_reader_release = run_in_thread(rw.unlock_shared)
        assert rw_reader_release is None
    with rw.write():
        assert rw.is_wlocked()
        assert run_in_thread(rw.try_lock_shared) is False
    assert not rw.is_locked()


def test_waiting_writer_holds_back_new_readers() -> None:
    rw = lockdep.SharedMutex("rw")
    writer_queued = threading.Event()
    order: list[str] = []
    wait_for = rw._cond.wait_for

    def spy(predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        writer_queued.set()  # called by the writer once it counts as waiting
        return wait_for(predicate, timeout)

    rw._cond.wait_for = spy  # type: ignore[method-assign]
    rw.lock_shared()

    def writer() -> None:
        with rw.write():
            order.append("writer")

    t = threading.Thread(target=writer)
    t.start()
    assert writer_queued.wait(10)
    assert rw._writers_waiting == 1
    assert run_in_thread(rw.try_lock_shared) is False, "a new reader must wait behind the writer"
    rw.unlock_shared()
    t.join(10)
    assert not t.is_alive()
    assert order == ["writer"]


def test_read_after_read_by_one_thread_is_recursive() -> None:
    rw = lockdep.SharedMutex("rw")
    with rw.read(), pytest.raises(lockdep.RecursiveLockError):
        rw.lock_shared()


def test_read_and_write_count_alike_for_order() -> None:
    rw, m = lockdep.SharedMutex("rw"), lockdep.Mutex("m")
    with rw.read(), m:
        pass
    with m, pytest.raises(lockdep.LockOrderError):
        rw.lock()
    with m, pytest.raises(lockdep.LockOrderError):
        rw.lock_shared()


def test_held_locks_show_the_mode() -> None:
    rw = lockdep.SharedMutex("rw")
    with rw.read():
        assert [h.mode for h in lockdep.held_locks()] == ["read"]
    with rw.write():
        assert [h.mode for h in lockdep.held_locks()] == ["write"]


def test_write_unlock_by_non_holder_is_a_violation() -> None:
    rw = lockdep.SharedMutex("rw")
    with pytest.raises(lockdep.UnlockError):
        rw.unlock()
    rw.lock()
    try:
        with pytest.raises(lockdep.UnlockError):
            run_in_thread(rw.unlock)
    finally:
        rw.unlock()


def test_read_side_may_be_released_by_another_thread() -> None:
    rw = lockdep.SharedMutex("rw")
    rw.lock_shared()
    run_in_thread(rw.unlock_shared)
    assert not rw.is_locked()
    assert lockdep.held_locks() == []


def test_read_unlock_without_reader_raises() -> None:
    rw = lockdep.SharedMutex("rw")
    with pytest.raises(RuntimeError, match="no reader"):
        rw.unlock_shared()


def test_timed_write_acquire_gives_up() -> None:
    rw = lockdep.SharedMutex("rw")
    rw.lock_shared()
    try:
        assert run_in_thread(lambda: rw.acquire(timeout=0.01)) is False
        assert rw._writers_waiting == 0
    finally:
        rw.unlock_shared()


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="non-empty str"):
        lockdep.SharedMutex(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="backtrace must be True or False"):
        lockdep.SharedMutex("rw", backtrace="no")  # type: ignore[arg-type]


def test_readers_and_writers_stress() -> None:
    rw = lockdep.SharedMutex("rw")
    state = {"value": 0, "readers_saw_torn": False}
    stop = threading.Event()

    def writer() -> None:
        for _ in range(300):
            with rw.write():
                state["value"] += 1
                state["value"] += 1

    def reader() -> None:
        while not stop.is_set():
            with rw.read():
                if state["value"] % 2:
                    state["readers_saw_torn"] = True

    readers = [threading.Thread(target=reader) for _ in range(4)]
    writers = [threading.Thread(target=writer) for _ in range(2)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join(60)
    stop.set()
    for t in readers:
        t.join(60)
    assert not any(t.is_alive() for t in readers + writers)
    assert state == {"value": 1200, "readers_saw_torn": False}
