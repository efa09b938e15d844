"""Turning lockdep off and on, and the threads' state across the switch."""

from __future__ import annotations

import threading

import pytest

import lockdep
from tests.conftest import run_in_thread


def test_disabled_checks_nothing_and_locks_still_work() -> None:
    a, b = lockdep.Mutex("A"), lockdep.Mutex("B")
    with a, b:
        pass
    lockdep.configure(enabled=False)
    with b, a:
        assert a.is_locked_by_me()
    assert lockdep.held_locks() == []
    assert lockdep.stats()["mode"] == "plain"


def test_lock_taken_while_disabled_released_while_enabled() -> None:
    a = lockdep.Mutex("A")
    lockdep.configure(enabled=False)
    a.lock()
    lockdep.configure(enabled=True)
    a.unlock()  # untracked acquisition: released quietly
    assert not a.is_locked()


def test_lock_taken_while_enabled_released_while_disabled() -> None:
    a, b = lockdep.Mutex("A"), lockdep.Mutex("B")
    a.lock()
    lockdep.configure(enabled=False)
    a.unlock()
    lockdep.configure(enabled=True)
    assert lockdep.held_locks() == [], "no stale entry survives the switch"
    with b, a:
        pass


def test_switching_to_checked_mode_and_back_keeps_the_stack() -> None:
    a, b = lockdep.Mutex("A"), lockdep.Mutex("B")
    a.lock()
    lockdep.configure(stats=True)
    b.lock()
    assert [h.name for h in lockdep.held_locks()] == ["A", "B"]
    lockdep.configure(stats=False)
    b.unlock()
    a.unlock()
    assert lockdep.held_locks() == []


def test_global_backtrace_records_stacks() -> None:
    lockdep.configure(backtrace=True)
    a = lockdep.Mutex("A")
    with a:
        (held,) = lockdep.held_locks()
    assert held.stack and "test_global_backtrace_records_stacks" in held.stack[-1]


def test_held_locks_of_another_thread() -> None:
    a = lockdep.Mutex("A")
    holding, done = threading.Event(), threading.Event()

    def holder() -> None:
        with a:
            holding.set()
            done.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    assert holding.wait(10)
    try:
        assert [h.name for h in lockdep.held_locks(t)] == ["A"]
        assert "Thread" in "".join(lockdep.all_held_locks())
    finally:
        done.set()
        t.join(10)
    assert lockdep.held_locks(t) == []
    with pytest.raises(TypeError, match=r"threading\.Thread"):
        lockdep.held_locks("main")  # type: ignore[arg-type]


def test_unlock_violation_in_log_mode_releases_for_the_owner() -> None:
    seen: list[lockdep.Violation] = []
    lockdep.configure(on_violation=seen.append)
    a = lockdep.Mutex("A")
    holding, done = threading.Event(), threading.Event()

    def holder() -> None:
        a.lock()
        holding.set()
        done.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    assert holding.wait(10)
    a.unlock()  # not ours: reported, then released as a plain lock would be
    assert [v.kind for v in seen] == ["unlock"]
    assert not a.is_locked()
    assert lockdep.held_locks(t) == []
    done.set()
    t.join(10)
    assert run_in_thread(lambda: a.acquire(False)) is True


@pytest.mark.parametrize("how", ["disabled", "untracked instance"])
def test_is_locked_by_me_tells_the_truth_without_tracking(how: str) -> None:
    if how == "disabled":
        lockdep.configure(enabled=False)
        m = lockdep.Mutex("m")
    else:
        m = lockdep.Mutex("m", lockdep=False)
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with m:
            taken.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert taken.wait(10)
        assert m.is_locked() and not m.is_locked_by_me(), "another thread holds it"
    finally:
        release.set()
        holder.join(10)
    assert not holder.is_alive()
    for take, drop in ((m.lock, m.unlock), (m.__enter__, lambda: m.__exit__(None, None, None))):
        take()
        assert m.is_locked_by_me()
        drop()
        assert not m.is_locked_by_me()
    assert m.try_lock() and m.is_locked_by_me()
    m.unlock()
    assert m.acquire(timeout=1) and m.is_locked_by_me()
    m.release()
    with m.nested(1):
        assert m.is_locked_by_me()
    assert not m.is_locked_by_me() and not m.is_locked()


def test_is_locked_by_me_across_a_switch_of_mode() -> None:
    m = lockdep.Mutex("m")
    m.lock()
    lockdep.configure(enabled=False)
    assert m.is_locked_by_me(), "taken tracked, still held once untracked"
    assert run_in_thread(m.is_locked_by_me) is False
    lockdep.configure(enabled=True)
    assert m.is_locked_by_me(), "taken tracked, held through the plain period"
    m.unlock()
    assert not m.is_locked_by_me()
    lockdep.configure(enabled=False)
    m.lock()
    lockdep.configure(enabled=True)
    assert m.is_locked_by_me(), "taken untracked"
    assert run_in_thread(m.is_locked_by_me) is False
    m.unlock()
    assert not m.is_locked_by_me() and not m.is_locked()


def test_cond_wait_keeps_ownership_when_disabled() -> None:
    lockdep.configure(enabled=False)
    m = lockdep.Mutex("m")
    cond = lockdep.Cond(m)
    with m:
        assert cond.wait(0.01) is False
        assert m.is_locked_by_me()
        cond.notify()  # owner-checked: must not raise
    assert not m.is_locked_by_me()
