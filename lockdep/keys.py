"""The layout of a tracked acquisition's key (``tkey``), in one place.

``tkey = ((class_id * SUBCLASSES + subclass) << 2) | flags``: the class (a small
integer from the registry), the subclass a ``nested(n)`` annotation gives
(0..7), and two flags: ``TRY`` (a trylock: never checked, no edge into it) and
``READ`` (a shared acquisition). ``tkey >> 2`` is the *graph key*: the node of
the dependency graph, which ordering and recursion are checked on.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Final


TRY: Final = 1
READ: Final = 2
SUBCLASSES: Final = 8
SUBCLASS_STRIDE: Final = 4  # tkey step between subclasses
CLASS_STRIDE: Final = SUBCLASSES * SUBCLASS_STRIDE  # tkey step between classes


def class_id(tkey: int) -> int:
    return tkey // CLASS_STRIDE


def graph_key(tkey: int) -> int:
    return tkey >> 2


def class_of_key(key: int) -> int:
    """The class id of a graph key."""
    return key // SUBCLASSES


def subclass_of_key(key: int) -> int:
    return key % SUBCLASSES


def check_subclass(subclass: object) -> int:
    """subclass, if it is one (an int from 0 to SUBCLASSES - 1); else TypeError or ValueError."""
    if type(subclass) is not int:
        raise TypeError(f"subclass must be an int from 0 to {SUBCLASSES - 1}, got {subclass!r}")
    if not 0 <= subclass < SUBCLASSES:
        raise ValueError(f"subclass must be an int from 0 to {SUBCLASSES - 1}, got {subclass!r}")
    return subclass


def subclass_key(tkey: int | None, subclass: object) -> int | None:
    """The key of tkey's class under subclass (checked); None for an untracked lock."""
    check_subclass(subclass)
    return None if tkey is None else tkey + subclass * SUBCLASS_STRIDE  # type: ignore[operator]
