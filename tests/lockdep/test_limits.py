"""The class limit and id reuse, seen through the tracker."""

from __future__ import annotations

import gc
import logging
from itertools import pairwise

import pytest

import lockdep


def test_unreferenced_class_keeps_its_edges() -> None:
    """Short-lived locks (per request, say) still teach the order: Ceph would forget it."""

    def request() -> None:
        a, b = lockdep.Mutex("req-A"), lockdep.Mutex("req-B")
        with a, b:
            pass

    request()  # both locks are gone afterwards
    b, a = lockdep.Mutex("req-B"), lockdep.Mutex("req-A")
    with b, pytest.raises(lockdep.LockOrderError):
        a.lock()


def classes() -> set[str]:
    return {c["name"] for c in lockdep.graph()["classes"]}


def known_classes() -> int:
    """Classes other tests left registered for good (install()'s allocation sites).

    Locks of earlier tests that are garbage only in a reference cycle give their class
    back when collected, possibly during this test: an unused class would then make room
    for a new one, and the limit would not be where the test puts it. So collect them,
    and let reset() forget their classes, first."""
    gc.collect()
    lockdep.reset()
    return len(lockdep.graph()["classes"])


def test_forgotten_class_loses_its_edges_and_cached_chains() -> None:
    known_classes()
    before = {c["name"] for c in lockdep.graph()["classes"]}
    lockdep.configure(max_classes=len(before) + 3)
    keep = lockdep.Mutex("keep")

    def short() -> None:
        tmp = lockdep.Mutex("tmp")
        with keep, tmp:
            pass
        tmp.close()

    short()
    assert len(lockdep.graph()["edges"]) == 1
    other = lockdep.Mutex("other")
    # Ids run short: an unused class is forgotten and its id reused. "tmp" is, unless a
    # lock of an earlier test is collected meanwhile and its class goes first.
    made = [lockdep.Mutex("third")]
    while "tmp" in classes():
        assert len(made) < 5, "tmp's class is never forgotten"
        made.append(lockdep.Mutex(f"third-{len(made)}"))
    third = made[-1]
    assert classes() - before == {"keep", "other", *(m.name for m in made)}
    assert lockdep.graph()["edges"] == []
    # third has tmp's old id: the cached chain "keep then tmp" must not vouch for it.
    with third, keep:
        pass
    with keep, pytest.raises(lockdep.LockOrderError):
        third.lock()
    del other


def test_limit_reached_reports_once_and_the_program_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lockdep.configure(max_classes=known_classes() + 2)
    a, b = lockdep.Mutex("A"), lockdep.Mutex("B")
    with caplog.at_level(logging.ERROR, logger="lockdep"):
        c = lockdep.Mutex("C")
        made = [lockdep.Mutex("D")]
        # Reached at D, or later if a lock of an earlier test is collected meanwhile
        # (its class makes room).
        while lockdep.stats()["validating"]:
            assert len(made) < 5, "the class limit is never reached"
            made.append(lockdep.Mutex(f"D{len(made)}"))
    d = made[-1]
    records = [r.getMessage() for r in caplog.records if "class limit" in r.getMessage()]
    assert len(records) == 1
    assert "max_classes=" in records[0] and "configure(max_classes" in records[0]
    assert lockdep.stats()["validating"] is False
    with a, b, c, d:  # no validation any more, no error
        pass
    with b, a:  # would be an inversion: not checked any more
        pass
    assert lockdep.held_locks() == []


def test_memory_follows_edges_not_the_limit() -> None:
    lockdep.configure(max_classes=1_000_000)
    locks = [lockdep.Mutex(f"L{i}") for i in range(50)]
    for x, y in pairwise(locks):
        with x, y:
            pass
    s = lockdep.stats()
    names = {c["name"] for c in lockdep.graph()["classes"]}
    assert {f"L{i}" for i in range(50)} <= names
    assert s["edges"] == 49 and s["max_classes"] == 1_000_000
