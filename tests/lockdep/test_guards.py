"""Guard locks (Goodlock's rule, SPEC 3.3): a cycle whose edges were all taken under
one same lock cannot deadlock; nor can one two of whose edges share a guard."""

from __future__ import annotations

import pytest

import lockdep


def test_opposite_orders_under_one_guard_are_kept_as_guarded() -> None:
    guard, a, b = lockdep.Mutex("guard"), lockdep.Mutex("a"), lockdep.Mutex("b")
    with guard, a, b:
        pass
    with guard, b, a:
        pass
    assert lockdep.stats()["violations"] == 0
    edges = {(e["from"], e["to"]): e for e in lockdep.graph()["edges"]}
    assert edges[("b", "a")]["guarded"] and edges[("b", "a")]["guards"] == ["guard"]
    assert not edges[("a", "b")]["guarded"] and edges[("a", "b")]["guards"] == ["guard"]


def test_opposite_orders_under_two_different_guards_are_a_violation() -> None:
    g1, g2 = lockdep.Mutex("g1"), lockdep.Mutex("g2")
    a, b = lockdep.Mutex("a"), lockdep.Mutex("b")
    with g1, a, b:
        pass
    with g2, b, pytest.raises(lockdep.LockOrderError):
        a.lock()


def test_a_later_sighting_without_the_guard_is_reported() -> None:
    guard, a, b = lockdep.Mutex("guard"), lockdep.Mutex("a"), lockdep.Mutex("b")
    with guard, a, b:
        pass
    with guard, b, a:
        pass
    with a, pytest.raises(lockdep.LockOrderError) as raised:
        b.lock()  # a -> b, unguarded now: against b -> a under the guard, a deadlock
    assert set(raised.value.violation.classes) == {"a", "b"}


def test_a_cycle_two_of_whose_edges_share_a_guard_cannot_deadlock() -> None:
    guard = lockdep.Mutex("guard")
    a, b, c = lockdep.Mutex("a"), lockdep.Mutex("b"), lockdep.Mutex("c")
    with a, b:  # unguarded
        pass
    with guard, b, c:
        pass
    with guard, c, a:  # closes a -> b -> c -> a: b -> c and c -> a never run at once
        pass
    assert lockdep.stats()["violations"] == 0
    with c, pytest.raises(lockdep.LockOrderError):  # c -> a unguarded: now all can
        a.lock()


def test_a_lock_held_for_reading_guards_nothing() -> None:
    shared = lockdep.SharedMutex("config")
    a, b = lockdep.Mutex("a"), lockdep.Mutex("b")
    with shared.read(), a, b:
        pass
    with shared.read(), b, pytest.raises(lockdep.LockOrderError):
        a.lock()  # two readers hold it at once: it serialises nothing
