"""A directed graph that stays acyclic, with incremental cycle detection.

This module knows nothing about locks: nodes are integers, each edge carries an
opaque payload chosen by the caller. The graph refuses any edge that would close
a cycle and returns the existing path that the edge would have closed instead.

Cycle detection is incremental (Pearce and Kelly, "A dynamic topological sort
algorithm for directed acyclic graphs", 2006). Every node has a position in a
topological order. An edge x -> y with ord[x] < ord[y] cannot close a cycle and
costs O(1). Otherwise only the nodes whose positions lie between ord[y] and
ord[x] can take part in a cycle: the search is bounded by that region and the
region is reordered afterwards. Adding an edge therefore costs in proportion to
the part of the graph it affects, not to the size of the graph (Ceph's lockdep
searches everything reachable from the new class).

Not thread-safe: the caller serialises access.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any


class DependencyGraph:
    """An acyclic directed graph of integer nodes with per-edge payloads."""

    __slots__ = ("_next_ord", "_ord", "_pred", "_succ")

    def __init__(self) -> None:
        self._succ: dict[int, dict[int, Any]] = {}
        self._pred: dict[int, set[int]] = {}
        self._ord: dict[int, int] = {}
        self._next_ord = 0

    def __len__(self) -> int:
        """The number of nodes."""
        return len(self._ord)

    def __contains__(self, node: object) -> bool:
        return node in self._ord

    def edge_count(self) -> int:
        return sum(len(s) for s in self._succ.values())

    def edges(self) -> Iterator[tuple[int, int, Any]]:
        """Every edge as (source, target, payload)."""
        for x, succ in self._succ.items():
            for y, data in succ.items():
                yield x, y, data

    def has_edge(self, x: int, y: int) -> bool:
        succ = self._succ.get(x)
        return succ is not None and y in succ

    def edge_data(self, x: int, y: int) -> Any:
        """The payload of x -> y; KeyError if there is no such edge."""
        return self._succ[x][y]

    def add_node(self, node: int) -> None:
        if node not in self._ord:
            self._ord[node] = self._next_ord
            self._next_ord += 1
            self._succ[node] = {}
            self._pred[node] = set()

    def add_edge(self, x: int, y: int, data: Any = None) -> list[int] | None:
        """Add the edge x -> y unless it would close a cycle.

        Returns None when the edge was added or already existed (its payload is
        then left as it was). When y already reaches x, nothing changes and the
        shortest existing path [y, ..., x] is returned; x == y returns [x].
        """
        if x == y:
            return [x]
        self.add_node(x)
        self.add_node(y)
        succ_x = self._succ[x]
        if y in succ_x:
            return None
        lower, upper = self._ord[y], self._ord[x]
        if lower < upper:
            forward = self._forward_region(y, x, upper)
            if forward is None:
                return self.shortest_path(y, x)
            backward = self._backward_region(x, lower)
            self._reorder(backward, forward)
        succ_x[y] = data
        self._pred[y].add(x)
        return None

    def remove_node(self, node: int) -> None:
        """Remove node and every edge into or out of it (no-op if absent)."""
        if node not in self._ord:
            return
        for y in self._succ.pop(node):
            self._pred[y].discard(node)
        for x in self._pred.pop(node):
            del self._succ[x][node]
        del self._ord[node]

    def clear(self) -> None:
        self._succ.clear()
        self._pred.clear()
        self._ord.clear()
        self._next_ord = 0

    def reaches(self, source: int, target: int) -> bool:
        """Whether a path source -> ... -> target of at least one edge exists."""
        if source not in self._ord or target not in self._ord:
            return False
        if source != target and self._ord[target] < self._ord[source]:
            return False  # topological order: every path climbs
        return self.shortest_path(source, target) is not None

    def shortest_path(self, source: int, target: int) -> list[int] | None:
        """The shortest path [source, ..., target] (breadth first), or None.

        The search only visits nodes ordered between source and target, since no
        path can leave that region.
        """
        if source not in self._ord or target not in self._ord:
            return None
        upper = self._ord[target]
        parent: dict[int, int] = {}
        todo = deque([source])
        while todo:
            node = todo.popleft()
            for nxt in self._succ[node]:
                if nxt == target:
                    path = [target, node]
                    while node != source:
                        node = parent[node]
                        path.append(node)
                    path.reverse()
                    return path
                if nxt not in parent and nxt != source and self._ord[nxt] < upper:
                    parent[nxt] = node
                    todo.append(nxt)
        return None

    def _forward_region(self, start: int, cycle_at: int, upper: int) -> list[int] | None:
        """Nodes reachable from start with ord < upper, or None if cycle_at is reached."""
        ords = self._ord
        seen = {start}
        stack = [start]
        while stack:
            node = stack.pop()
            for nxt in self._succ[node]:
                if nxt == cycle_at:
                    return None
                if nxt not in seen and ords[nxt] < upper:
                    seen.add(nxt)
                    stack.append(nxt)
        return list(seen)

    def _backward_region(self, start: int, lower: int) -> list[int]:
        """Nodes that reach start with ord > lower."""
        ords = self._ord
        seen = {start}
        stack = [start]
        while stack:
            node = stack.pop()
            for prev in self._pred[node]:
                if prev not in seen and ords[prev] > lower:
                    seen.add(prev)
                    stack.append(prev)
        return list(seen)

    def _reorder(self, backward: list[int], forward: list[int]) -> None:
        # The nodes that reach x must come before the nodes y reaches; both keep
        # their relative order and reuse the same set of positions.
        ords = self._ord
        backward.sort(key=ords.__getitem__)
        forward.sort(key=ords.__getitem__)
        nodes = backward + forward
        slots = sorted(ords[n] for n in nodes)
        for node, slot in zip(nodes, slots, strict=True):
            ords[node] = slot
