"""The layout of a tracked acquisition's key (``tkey``), in one place.

``tkey = ((class_id * SUBCLASSES + subclass) << 2) | flags``: the class (a small
integer from the registry), the subclass a ``nested(n)`` annotation gives
(0..7), and two flags: ``TRY`` (a trylock: never checked, no edge into it) and
``READ`` (a shared acquisition). ``tkey >> 2`` is the *graph key*: the node of
the dependency graph, which ordering and recursion are checked on.
"""

from __future__ import annotations

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
