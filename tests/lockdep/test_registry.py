"""The class registry: ids, reference counts, LRU reuse of unreferenced ids, the limit."""

from __future__ import annotations

import pytest

from lockdep.registry import ClassRegistry


def make(limit: int) -> tuple[ClassRegistry, list[int]]:
    forgotten: list[int] = []
    return ClassRegistry(limit, forgotten.append), forgotten


def test_same_name_same_id_with_reference_counts() -> None:
    reg, _ = make(10)
    a = reg.register("a")
    assert reg.register("a") == a
    assert reg.references(a) == 2
    reg.unregister(a)
    assert reg.references(a) == 1
    assert reg.register("b") != a


def test_unreferenced_class_is_kept_until_ids_run_short() -> None:
    reg, forgotten = make(2)
    a = reg.register("a")
    reg.unregister(a)
    assert reg.lookup("a") == a and forgotten == []
    assert reg.register("a") == a  # back again: same id, still known
    reg.unregister(a)
    b = reg.register("b")
    c = reg.register("c")  # ids run short: "a" gives its id up
    assert forgotten == [a] and c == a and b != a
    assert reg.lookup("a") is None


def test_least_recently_used_unreferenced_class_goes_first() -> None:
    reg, forgotten = make(3)
    ids = {name: reg.register(name) for name in "abc"}
    for name in "bac":  # b became unreferenced first
        reg.unregister(ids[name])
    reg.register("d")
    assert forgotten == [ids["b"]]
    reg.register("e")
    assert forgotten == [ids["b"], ids["a"]]


def test_limit_reached_when_every_id_is_referenced() -> None:
    reg, forgotten = make(2)
    reg.register("a")
    reg.register("b")
    assert reg.register("c") is None
    assert forgotten == [] and len(reg) == 2


def test_unregister_without_reference_is_an_error() -> None:
    reg, _ = make(2)
    with pytest.raises(ValueError, match="no live registration"):
        reg.unregister(0)
    a = reg.register("a")
    reg.unregister(a)
    with pytest.raises(ValueError):
        reg.unregister(a)
