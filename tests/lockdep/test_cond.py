"""Cond: wait releases and re-takes the mutex, in fact and in lockdep's view."""

from __future__ import annotations

import _thread
import threading

import pytest

import lockdep


def test_wait_releases_the_mutex_in_lockdeps_view() -> None:
    m = lockdep.Mutex("m")
    cond = lockdep.Cond(m)
    seen_by_waiter: list[list[str]] = []
    ready = threading.Event()
    go = [False]

    def waiter() -> None:
        with m:
            ready.set()
            cond.wait_for(lambda: go[0], timeout=10)
            seen_by_waiter.append([h.name for h in lockdep.held_locks()])

    t = threading.Thread(target=waiter)
    t.start()
    assert ready.wait(10)
    with m:  # possible only because the waiter released m
        assert lockdep.held_locks(t) == [], "a waiting thread holds nothing"
        go[0] = True
        cond.notify()
    t.join(10)
    assert not t.is_alive()
    assert seen_by_waiter == [["m"]]


def test_retake_after_wait_is_validated() -> None:
    """Holding L (taken after M) while waiting on M's Cond re-takes M under L: L -> M
    against the earlier M -> L is an inversion."""
    m, other = lockdep.Mutex("M"), lockdep.Mutex("L")
    cond = lockdep.Cond(m)
    with m, other:
        with pytest.raises(lockdep.LockOrderError):
            cond.wait(timeout=0)
        assert m.is_locked_by_me(), "the mutex is held again after the wait, even so"


def test_wait_timeout_returns_false_and_retakes() -> None:
    m = lockdep.Mutex("m")
    cond = lockdep.Cond(m)
    with m:
        assert cond.wait(timeout=0.01) is False
        assert m.is_locked_by_me()
        assert [h.name for h in lockdep.held_locks()] == ["m"]


def test_wait_for_returns_the_predicate_value() -> None:
    m = lockdep.Mutex("m")
    cond = lockdep.Cond(m)
    with m:
        assert cond.wait_for(lambda: 42) == 42
        assert cond.wait_for(lambda: 0, timeout=0.01) == 0


def test_waiting_or_notifying_without_the_mutex_is_an_error() -> None:
    m = lockdep.Mutex("m")
    cond = lockdep.Cond(m)
    with pytest.raises(RuntimeError, match="not held by this thread"):
        cond.wait(0)
    with pytest.raises(RuntimeError, match="not held by this thread"):
        cond.notify()


def test_cond_needs_a_mutex() -> None:
    with pytest.raises(TypeError, match=r"needs a lockdep\.Mutex"):
        lockdep.Cond(_thread.allocate_lock())  # type: ignore[arg-type]


def test_recursive_mutex_is_released_fully_and_restored() -> None:
    r = lockdep.Mutex("r", recursive=True)
    cond = lockdep.Cond(r)
    taken_by_other = threading.Event()

    def other() -> None:
        with r:
            taken_by_other.set()
            cond.notify()

    with r, r:
        t = threading.Thread(target=other)
        t.start()
        cond.wait_for(taken_by_other.is_set, timeout=10)
        assert [h.reentry for h in lockdep.held_locks()] == [False, True]
    t.join(10)
    assert not t.is_alive() and not r.is_locked()


def test_notify_all_wakes_every_waiter() -> None:
    m = lockdep.Mutex("m")
    cond = lockdep.Cond(m)
    waiting = threading.Semaphore(0)
    released = [False]
    woke: list[int] = []

    def waiter(n: int) -> None:
        with m:
            waiting.release()
            cond.wait_for(lambda: released[0], timeout=10)
            woke.append(n)

    threads = [threading.Thread(target=waiter, args=(n,)) for n in range(5)]
    for t in threads:
        t.start()
    for _ in threads:
        assert waiting.acquire(timeout=10)
    with m:
        released[0] = True
        cond.notify_all()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    assert sorted(woke) == list(range(5))


def test_condition_as_context_manager() -> None:
    m = lockdep.Mutex("m")
    cond = lockdep.Cond(m)
    with cond:
        assert m.is_locked_by_me()
    assert not m.is_locked()
