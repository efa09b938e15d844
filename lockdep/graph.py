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

Edges outside the order. A caller may keep an edge that closes a cycle it has
judged harmless (lockdep: a cycle whose edges share a guard lock) as a *back
edge*: it stays out of the topological order, and while any exists, cycle
checks also follow back edges (a plain search, not bounded by the order).

Labelled paths. ``disjoint_path`` finds a path whose edges' label sets are
pairwise disjoint (and disjoint from a starting set): for lockdep, a cycle of
edges that can all be taken at once, no two of them serialised by a common
guard lock.

Not thread-safe: the caller serialises access.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any


class DependencyGraph:
    """An acyclic directed graph of integer nodes with per-edge payloads."""

    __slots__ = ("_back", "_next_ord", "_ord", "_pred", "_succ")

    def __init__(self) -> None:
        self._succ: dict[int, dict[int, Any]] = {}
        self._pred: dict[int, set[int]] = {}
        self._ord: dict[int, int] = {}
        self._next_ord = 0
        self._back: dict[int, dict[int, Any]] = {}  # back edges: x -> {y: payload}

    def __len__(self) -> int:
        """The number of nodes."""
        return len(self._ord)

    def __contains__(self, node: object) -> bool:
        return node in self._ord

    def edge_count(self) -> int:
        """Edges of the order and back edges."""
        return sum(len(s) for s in self._succ.values()) + sum(len(b) for b in self._back.values())

    def edges(self) -> Iterator[tuple[int, int, Any]]:
        """Every edge as (source, target, payload), back edges last."""
        for table in (self._succ, self._back):
            for x, succ in table.items():
                for y, data in succ.items():
                    yield x, y, data

    def has_edge(self, x: int, y: int) -> bool:
        """Whether x -> y is an edge (of the order, or a back edge)."""
        succ = self._succ.get(x)
        if succ is not None and y in succ:
            return True
        back = self._back.get(x)
        return back is not None and y in back

    def edge_data(self, x: int, y: int) -> Any:
        """The payload of x -> y; KeyError if there is no such edge."""
        succ = self._succ.get(x)
        if succ is not None and y in succ:
            return succ[y]
        return self._back[x][y]

    def has_back_edges(self) -> bool:
        return bool(self._back)

    def add_back_edge(self, x: int, y: int, data: Any = None) -> None:
        """Keep x -> y, an edge that closes a cycle, outside the order."""
        self.add_node(x)
        self.add_node(y)
        self._back.setdefault(x, {})[y] = data

    def add_node(self, node: int) -> None:
        if node not in self._ord:
            self._ord[node] = self._next_ord
            self._next_ord += 1
            self._succ[node] = {}
            self._pred[node] = set()

    def add_edge(self, x: int, y: int, data: Any = None) -> list[int] | None:
        """Add the edge x -> y unless it would close a cycle.

        Returns None when the edge was added or already existed (its payload is
        then left as it was). When y already reaches x (also through back
        edges), nothing changes and the shortest existing path [y, ..., x] is
        returned; x == y returns [x].
        """
        if x == y:
            return [x]
        self.add_node(x)
        if y not in self._ord:  # a new node reaches nothing: no cycle, and it orders last
            self.add_node(y)
            self._succ[x][y] = data
            self._pred[y].add(x)
            return None
        succ_x = self._succ[x]
        if y in succ_x or y in self._back.get(x, ()):
            return None
        if self._back:
            path = self.shortest_path(y, x)
            if path is not None:
                return path
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

    def edges_of(self, node: int) -> list[tuple[int, int]]:
        """Every edge into or out of node, back edges included, as (source, target)."""
        if node not in self._ord:
            return []
        found = [(node, y) for y in self._succ[node]]
        found += [(x, node) for x in self._pred[node]]
        found += [(node, y) for y in self._back.get(node, ())]
        found += [(x, node) for x, back in self._back.items() if node in back]
        return found

    def add_edge_to_new(self, x: int, y: int, data: Any = None) -> None:
        """Add x -> y where y is not in the graph yet (so it cannot close a cycle):
        add_edge's work without its checks, for a hot path."""
        ords = self._ord
        if x not in ords:
            self.add_node(x)
        ords[y] = self._next_ord
        self._next_ord += 1
        self._succ[y] = {}
        self._pred[y] = {x}
        self._succ[x][y] = data

    def remove_node(self, node: int) -> None:
        """Remove node and every edge into or out of it (no-op if absent)."""
        if node not in self._ord:
            return
        for y in self._succ.pop(node):
            self._pred[y].discard(node)
        for x in self._pred.pop(node):
            del self._succ[x][node]
        del self._ord[node]
        if self._back:
            self._back.pop(node, None)
            for x in [x for x, back in self._back.items() if node in back]:
                del self._back[x][node]
                if not self._back[x]:
                    del self._back[x]

    def clear(self) -> None:
        self._succ.clear()
        self._pred.clear()
        self._ord.clear()
        self._back.clear()
        self._next_ord = 0

    def reaches(self, source: int, target: int) -> bool:
        """Whether a path source -> ... -> target of at least one edge exists."""
        if source not in self._ord or target not in self._ord:
            return False
        if not self._back and source != target and self._ord[target] < self._ord[source]:
            return False  # topological order: every path climbs
        return self.shortest_path(source, target) is not None

    def shortest_path(self, source: int, target: int) -> list[int] | None:
        """The shortest path [source, ..., target] (breadth first), or None."""
        return self.disjoint_path(source, target, frozenset(), lambda _data: frozenset())

    def disjoint_path(
        self,
        source: int,
        target: int,
        start: frozenset[Any],
        labels: Callable[[Any], frozenset[Any]],
    ) -> list[int] | None:
        """The shortest path [source, ..., target] whose edges' label sets
        (``labels(payload)``) are pairwise disjoint and disjoint from ``start``; or None.

        Breadth first over (node, labels used so far); a walk that revisits a node
        contains a simple path that qualifies too, so the answer is exact. Label
        sets are small. Without back edges the search only visits nodes ordered
        between source and target, since no path can leave that region.
        """
        if source not in self._ord or target not in self._ord:
            return None
        ords = self._ord
        upper = ords[target] if not self._back else None
        first = (source, start)
        parent: dict[tuple[int, frozenset[Any]], tuple[int, frozenset[Any]] | None] = {first: None}
        todo = deque([first])
        while todo:
            state = todo.popleft()
            node, used = state
            for table in (self._succ, self._back):
                for nxt, data in table.get(node, {}).items():
                    own = labels(data)
                    if own and not own.isdisjoint(used):
                        continue  # serialised with an edge already on the path
                    if nxt == target:
                        path = [target, node]
                        back = parent[state]
                        while back is not None:
                            path.append(back[0])
                            back = parent[back]
                        path.reverse()
                        return path
                    if upper is not None and ords[nxt] >= upper:
                        continue
                    key = (nxt, used | own if own else used)
                    if key not in parent and nxt != source:
                        parent[key] = state
                        todo.append(key)
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
