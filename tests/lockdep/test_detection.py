"""SPEC 3.9: the detection scenarios, in one thread and split across threads."""

from __future__ import annotations

import threading

import pytest

import lockdep
from tests.conftest import run_in_thread


def lu2(x: lockdep.Mutex, y: lockdep.Mutex) -> None:
    """Lock x, lock y, unlock y, unlock x."""
    with x, y:
        pass


@pytest.fixture
def locks() -> dict[str, lockdep.Mutex]:
    return {name: lockdep.Mutex(name) for name in "ABCD"}


# Each scenario: the LU2 pairs in order; the violation must be raised by the last.
ORDER_SCENARIOS = {
    "ABBA": ["AB", "BA"],
    "ABBCCA": ["AB", "BC", "CA"],
    "ABCABC": ["AB", "CA", "BC"],
    "ABBCCDDA": ["AB", "BC", "CD", "DA"],
    "ABCDBDDA": ["AB", "CD", "BD", "DA"],
    "ABCDBCDA": ["AB", "CD", "BC", "DA"],
}


@pytest.mark.parametrize("name", ORDER_SCENARIOS)
def test_order_violation_raised_on_last_step(name: str, locks: dict[str, lockdep.Mutex]) -> None:
    *setup, last = ORDER_SCENARIOS[name]
    for x, y in setup:
        lu2(locks[x], locks[y])
    x, y = last
    with locks[x]:
        with pytest.raises(lockdep.LockOrderError) as info:
            locks[y].lock()
        assert not locks[y].is_locked(), "the lock must not be taken"
    v = info.value.violation
    assert v.kind == "order"
    assert v.classes[0] == y and set(v.classes) <= set(name)
    assert [h.name for h in v.held] == [x]


@pytest.mark.parametrize("name", ORDER_SCENARIOS)
def test_order_violation_split_across_threads(name: str, locks: dict[str, lockdep.Mutex]) -> None:
    """Each pair runs in its own thread, one after the other: no deadlock can happen,
    yet the thread closing the cycle is told."""
    *setup, last = ORDER_SCENARIOS[name]
    for x, y in setup:
        run_in_thread(lambda x=x, y=y: lu2(locks[x], locks[y]))
    with pytest.raises(lockdep.LockOrderError):
        run_in_thread(lambda: lu2(locks[last[0]], locks[last[1]]))


def test_order_violation_between_two_live_threads() -> None:
    """Thread 1 holds A and B; thread 2 takes another B, then A, which thread 1 holds:
    the inversion is reported before thread 2 blocks on A."""
    a, b, other_b = lockdep.Mutex("A"), lockdep.Mutex("B"), lockdep.Mutex("B")
    first_holds = threading.Event()
    second_done = threading.Event()
    outcome: dict[str, BaseException] = {}

    def first() -> None:
        with a, b:
            first_holds.set()
            second_done.wait(10)

    def second() -> None:
        try:
            assert first_holds.wait(10)
            with other_b:
                a.lock()  # a plain lock would wait for thread 1 here
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            second_done.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    assert isinstance(outcome.get("error"), lockdep.LockOrderError)
    assert not a.is_locked()


def test_aa_two_instances_of_one_class() -> None:
    a1, a2 = lockdep.Mutex("A"), lockdep.Mutex("A")
    with a1:
        with pytest.raises(lockdep.RecursiveLockError) as info:
            a2.lock()
        assert not a2.is_locked()
    v = info.value.violation
    assert v.kind == "recursive" and v.classes == ("A",)
    assert "another lock of the same class" in v.report


def test_aa_same_instance_is_reported_before_blocking() -> None:
    a = lockdep.Mutex("A")
    with a:
        with pytest.raises(lockdep.RecursiveLockError) as info:
            a.lock()  # a plain lock would deadlock here
    assert "the same lock" in info.value.violation.report


def test_double_unlock() -> None:
    a = lockdep.Mutex("A")
    a.lock()
    a.unlock()
    with pytest.raises(lockdep.UnlockError) as info:
        a.unlock()
    assert "not locked at all" in info.value.violation.report


def test_unlock_by_another_thread_is_reported() -> None:
    a = lockdep.Mutex("A")
    a.lock()
    try:
        with pytest.raises(lockdep.UnlockError) as info:
            run_in_thread(a.unlock)
        assert "MainThread" in info.value.violation.report
        assert a.is_locked_by_me()
    finally:
        a.unlock()


# --- not violations ------------------------------------------------------------


def test_bad_unlock_order_is_legal() -> None:
    a, b, c = lockdep.Mutex("A"), lockdep.Mutex("B"), lockdep.Mutex("C")
    a.lock()
    b.lock()
    a.unlock()
    # The chain is rebuilt for what is still held: B then C is learned, A then C is not new.
    c.lock()
    c.unlock()
    b.unlock()
    assert lockdep.held_locks() == []
    edges = {(e["from"], e["to"]) for e in lockdep.graph()["edges"]}
    assert edges == {("A", "B"), ("B", "C")}


def test_nested_instances_under_distinct_subclasses() -> None:
    parent, child = lockdep.Mutex("inode"), lockdep.Mutex("inode")
    with parent:
        with child.nested(1):
            assert [(h.name, h.subclass) for h in lockdep.held_locks()] == [
                ("inode", 0),
                ("inode", 1),
            ]
    parent.lock()
    child.lock(subclass=1)
    child.unlock()
    parent.unlock()


def test_subclass_inversion_is_still_an_inversion() -> None:
    parent, child = lockdep.Mutex("inode"), lockdep.Mutex("inode")
    with parent, child.nested(1):
        pass
    with child.nested(1), pytest.raises(lockdep.LockOrderError) as info:
        parent.lock()
    assert info.value.violation.classes == ("inode", "inode/1")


def test_recursive_mutex_reentered_by_owner() -> None:
    r = lockdep.Mutex("R", recursive=True)
    with r:
        with r:
            r.lock()
            assert len(lockdep.held_locks()) == 3
            assert [h.reentry for h in lockdep.held_locks()] == [False, True, True]
            r.unlock()
        assert r.is_locked_by_me()
    assert not r.is_locked()


def test_two_instances_of_a_recursive_class_are_still_recursion() -> None:
    r1, r2 = lockdep.Mutex("R", recursive=True), lockdep.Mutex("R", recursive=True)
    with r1, pytest.raises(lockdep.RecursiveLockError):
        r2.lock()


def test_same_order_from_many_threads() -> None:
    a, b, c = lockdep.Mutex("A"), lockdep.Mutex("B"), lockdep.Mutex("C")
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker() -> None:
        try:
            start.wait(10)
            for _ in range(200):
                with a, b, c:
                    pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert lockdep.stats()["violations"] == 0
