"""The class limit and id reuse, seen through the tracker."""

from __future__ import annotations

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


def known_classes() -> int:
    # Classes other tests left registered for good (install()'s allocation sites).
    return len(lockdep.graph()["classes"])


def test_forgotten_class_loses_its_edges_and_cached_chains() -> None:
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
    third = lockdep.Mutex("third")  # ids run short: "tmp" is forgotten, its id reused
    names = {c["name"] for c in lockdep.graph()["classes"]} - before
    assert names == {"keep", "other", "third"}
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
        d = lockdep.Mutex("D")
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
