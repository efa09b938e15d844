"""records.NamedTuple: typing.NamedTuple's class syntax, without typing."""

from __future__ import annotations

import typing

import pytest

from lockdep.records import NamedTuple
from lockdep.values import HeldLock, Site


class Point(NamedTuple):  # type: ignore[misc]  # mypy knows only typing's
    """A point."""

    x: int
    y: int = 0
    label: str | None = None

    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)


def test_fields_defaults_methods_and_doc_as_typing_makes_them() -> None:
    p = Point(3, -4)
    assert p == (3, -4, None) and isinstance(p, tuple)
    assert Point._fields == ("x", "y", "label")
    assert Point._field_defaults == {"y": 0, "label": None}
    assert p.norm1() == 7 and p._replace(y=1).norm1() == 4
    assert Point.__doc__ == "A point." and Point.__module__ == __name__
    assert repr(p) == "Point(x=3, y=-4, label=None)"
    assert typing.get_type_hints(Point) == {"x": int, "y": int, "label": str | None}


def test_lockdeps_values_are_named_tuples() -> None:
    site = Site("f.py", 3, "main")
    assert str(site) == "f.py:3 in main" and site._asdict()["line"] == 3
    assert HeldLock._fields[:3] == ("name", "subclass", "lock")
    assert typing.get_type_hints(Site) == {"file": str, "line": int, "function": str}


def test_bad_declarations_are_refused_as_by_typing() -> None:
    with pytest.raises(TypeError, match="non-default field 'b' follows a default field"):

        class Bad(NamedTuple):  # type: ignore[misc]
            a: int = 0
            b: int

    with pytest.raises(AttributeError, match="cannot overwrite NamedTuple attribute _make"):

        class Worse(NamedTuple):  # type: ignore[misc]
            a: int

            def _make(self) -> None: ...  # type: ignore[override]

    with pytest.raises(TypeError, match="can only derive from NamedTuple"):

        class Mixed(NamedTuple, int):  # type: ignore[misc]
            a: int
