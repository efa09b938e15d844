"""Held stacks: releases out of order leave tombstones; chains stay exact; the
position hint finds an entry at once."""

from __future__ import annotations

import lockdep
from lockdep.held import LOCK, find, live
from lockdep.tracker import LOCKDEP


def stack() -> list[tuple[object, frozenset[int]]]:
    return [(e[LOCK], e[2].classes) for e in LOCKDEP.local.held]


def test_a_release_from_the_middle_leaves_a_tombstone_with_the_chain_below() -> None:
    a, b, c = lockdep.Mutex("a"), lockdep.Mutex("b"), lockdep.Mutex("c")
    a.lock()
    b.lock()
    c.lock()
    b.unlock()
    (_, _root), (ea, ka), (tomb, kt), (ec, kc) = stack()
    assert (ea, tomb, ec) == (a, None, c)
    assert kt == ka and len(kc) == 2, "c's chain no longer holds b's class"
    assert [h.name for h in lockdep.held_locks()] == ["a", "c"]
    c.unlock()  # the fast path's pop: the tombstone stays, harmless
    assert [h.name for h in lockdep.held_locks()] == ["a"]
    a.unlock()  # a removal: the tombstones left at the top go with it
    assert len(LOCKDEP.local.held) == 1


def test_first_in_first_out_release_of_one_class_stops_at_once() -> None:
    locks = [lockdep.Mutex("cell", instance_order=True) for _ in range(100)]
    for lock in locks:
        lock.lock()
    chains_before = [e[2] for e in LOCKDEP.local.held[2:]]
    locks[0].unlock()
    # The entries above keep their chain objects: nothing was rebuilt.
    assert [e[2] for e in LOCKDEP.local.held[2:]] == chains_before
    for lock in locks[1:]:
        lock.unlock()
    assert live(LOCKDEP.local.held) == []


def test_the_position_hint_finds_an_entry_pushed_off_the_fast_path() -> None:
    first, second = (lockdep.Mutex("cell", instance_order=True) for _ in range(2))
    with first, second:
        held = LOCKDEP.local.held
        assert find(held, second) == len(held) - 1
        assert find(held, first) == len(held) - 2
