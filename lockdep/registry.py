"""Lock classes: names, small integer ids, reference counts and id reuse.

Ceph's ``lockdep_register`` / ``lockdep_unregister``, with one difference: a class
whose last instance is gone keeps its id and its place in the dependency graph.
Ceph forgets such a class at once, which loses the order learned from
short-lived locks (a per-request lock, say) and hides real inversions. Here an
unreferenced class is only forgotten when ids run short, least recently used
first; the owner of the registry is told through ``on_forget`` so that it can
erase the class's edges.

Not thread-safe: the caller serialises access.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator


class ClassRegistry:
    """Maps class names to ids in ``range(max_classes)``."""

    __slots__ = ("_free", "_ids", "_max", "_names", "_next_id", "_on_forget", "_refs", "_unused")

    def __init__(self, max_classes: int, on_forget: Callable[[int], None]) -> None:
        self._max = max_classes
        self._on_forget = on_forget
        self._ids: dict[str, int] = {}
        self._names: dict[int, str] = {}
        self._refs: dict[int, int] = {}
        # Unreferenced classes, least recently used first.
        self._unused: OrderedDict[int, None] = OrderedDict()
        self._free: list[int] = []
        self._next_id = 0

    @property
    def max_classes(self) -> int:
        return self._max

    @max_classes.setter
    def max_classes(self, value: int) -> None:
        self._max = value
        # Ids at or above a lowered limit stay valid; they are simply not reused.
        self._free = [i for i in self._free if i < value]

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[tuple[int, str, int]]:
        """Every known class as (id, name, live references)."""
        for cid, name in self._names.items():
            yield cid, name, self._refs.get(cid, 0)

    def lookup(self, name: str) -> int | None:
        return self._ids.get(name)

    def name(self, class_id: int) -> str:
        return self._names[class_id]

    def references(self, class_id: int) -> int:
        return self._refs.get(class_id, 0)

    def register(self, name: str) -> int | None:
        """Take a reference to name's class, creating it if needed.

        Returns the id, or None when every id is held by a class that still has
        live references (the limit is reached).
        """
        cid = self._ids.get(name)
        if cid is None:
            cid = self._take_id()
            if cid is None:
                return None
            self._ids[name] = cid
            self._names[cid] = name
            self._refs[cid] = 0
        elif cid in self._unused:
            del self._unused[cid]
        self._refs[cid] += 1
        return cid

    def unregister(self, class_id: int) -> None:
        """Drop one reference; ValueError if the id has none."""
        refs = self._refs.get(class_id, 0)
        if refs <= 0:
            raise ValueError(f"lockdep class id {class_id!r} has no live registration")
        refs -= 1
        self._refs[class_id] = refs
        if refs == 0:
            self._unused[class_id] = None

    def forget_unused(self) -> None:
        """Forget every class without live references (used by reset)."""
        while self._unused:
            self._forget(next(iter(self._unused)))

    def _take_id(self) -> int | None:
        if self._free:
            return self._free.pop()
        if self._next_id < self._max:
            self._next_id += 1
            return self._next_id - 1
        # Ids run short: the least recently used unreferenced class gives its id up.
        while self._unused:
            cid = next(iter(self._unused))
            self._forget(cid)
            if cid < self._max:
                return self._free.pop()
        return None

    def _forget(self, class_id: int) -> None:
        del self._unused[class_id]
        del self._ids[self._names.pop(class_id)]
        del self._refs[class_id]
        if class_id < self._max:
            self._free.append(class_id)
        self._on_forget(class_id)
