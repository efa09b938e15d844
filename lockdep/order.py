"""A learned lock order: sightings of edges, their guards, and the cycles they close.

Used twice by the tracker: once between lock classes (nodes are graph keys) and
once between live instances of one class (nodes are instance numbers), the way
Abseil's and TSan's deadlock detectors keep an order between mutexes. This
module knows edges, sightings and guards, not locks or threads; it answers with
facts (the cycle an edge would close), and the tracker builds violations.

Guard locks (Goodlock's rule). Every sighting of an edge comes with the set of
locks held (in write mode) besides its two ends; an edge keeps the intersection
over its sightings. Two edges that share a guard are never taken at the same
time, since the guard serialises them; a deadlock needs every edge of a cycle
taken at once, so a cycle can deadlock only if no two of its edges share a
guard (in particular, a cycle whose edges all share one cannot). The edge that
closes a cycle with no such feasible path is kept as a *guarded* back edge,
outside the order, instead of being reported. If a later sighting shrinks an
edge's guards so that a cycle through it becomes feasible, that sighting is
reported.

Not thread-safe: the tracker calls it under its mutex, except ``known`` and
``learn_new``. ``known`` may be read without it (a dict lookup: the instance
check of the cached path). ``learn_new`` queues an edge into a node seen for
the first time, which cannot close a cycle: a thread holding 3,000 new
futures' locks learns 3,000 such edges, and queueing them (a deque append) is
what keeps that cheap; every other method first adds what is queued.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from itertools import pairwise

from .graph import DependencyGraph
from .values import EdgeInfo

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

PAIR_SHIFT = 32  # known's keys: source << PAIR_SHIFT | target


def pair(source: int, target: int) -> int:
    return source << PAIR_SHIFT | target


def _guards(info: EdgeInfo) -> frozenset[int]:
    return info.guards


class Order:
    """Nodes, edges with ``EdgeInfo`` payloads, and the cycles between them."""

    __slots__ = ("_fresh", "graph", "known")

    def __init__(self) -> None:
        self.graph = DependencyGraph()
        self.known: dict[int, EdgeInfo] = {}
        # (source, target, EdgeInfo's arguments, guards): see learn_new.
        self._fresh: deque[tuple[int, int, tuple[Any, ...], frozenset[int]]] = deque()

    def __len__(self) -> int:
        self.flush()
        return len(self.graph)

    def learn_new(
        self, source: int, target: int, info_args: tuple[Any, ...], guards: frozenset[int]
    ) -> None:
        """Queue source -> target, target being a node never seen before (no edge into
        or out of it: the edge cannot close a cycle). Thread-safe without the mutex."""
        self._fresh.append((source, target, info_args, guards))

    def flush(self) -> None:
        """Add the queued edges (under the mutex)."""
        fresh = self._fresh
        graph = self.graph
        known = self.known
        while fresh:
            try:
                source, target, info_args, guards = fresh.popleft()
            except IndexError:  # emptied by another thread (a finalizer's flush)
                break
            info = EdgeInfo(*info_args)
            info.guards = guards
            if target in graph:
                if graph.add_edge(source, target, info) is None:
                    known[source << PAIR_SHIFT | target] = info
            else:
                graph.add_edge_to_new(source, target, info)
                known[source << PAIR_SHIFT | target] = info

    def edge_count(self) -> int:
        self.flush()
        return self.graph.edge_count()

    def edge(self, source: int, target: int) -> EdgeInfo | None:
        return self.known.get(pair(source, target))

    def sight(
        self,
        source: int,
        target: int,
        guards: frozenset[int],
        make_info: Callable[[], EdgeInfo],
    ) -> list[int] | None:
        """Record a sighting of source -> target with ``guards`` held.

        Returns None when the order allows it (a new edge added, a known one
        counted, or a cycle that a guard serialises kept as a guarded back edge).
        Otherwise returns the existing path [target, ..., source] that the edge
        closes into a cycle whose edges could all be taken at once (no two share
        a guard); a new edge is then not added.
        """
        self.flush()
        graph = self.graph
        info = self.known.get(pair(source, target))
        if info is not None:
            info.count += 1
            if info.guards and not info.guards <= guards:
                info.guards = info.guards & guards
                if graph.has_back_edges():
                    return graph.disjoint_path(target, source, info.guards, _guards)
            return None
        info = make_info()
        info.guards = guards
        path = graph.add_edge(source, target, info)
        if path is None:
            self.known[pair(source, target)] = info
            return None
        path = graph.disjoint_path(target, source, guards, _guards)
        if path is None:
            info.guarded = True
            graph.add_back_edge(source, target, info)
            self.known[pair(source, target)] = info
        return path

    def links(self, path: list[int]) -> list[tuple[int, int, EdgeInfo]]:
        """The edges along a path, with their payloads."""
        self.flush()
        return [(a, b, self.graph.edge_data(a, b)) for a, b in pairwise(path)]

    def remove(self, node: int) -> None:
        """Forget a node and every edge into or out of it."""
        self.flush()
        for source, target in self.graph.edges_of(node):
            self.known.pop(pair(source, target), None)
        self.graph.remove_node(node)

    def clear(self) -> None:
        self._fresh.clear()
        self.graph.clear()
        self.known.clear()
