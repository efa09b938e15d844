"""Property: the tracker against a plain model of the lock-order graph.

Random sequences of lock, trylock and unlock (in any order) over four classes
with two instances each, in one thread. The model keeps the edges with their
guards (the classes held besides the edge's ends, intersected over sightings)
and finds cycles by enumerating simple paths; lockdep must report a cycle
exactly when the model has one whose edges can all be taken at once (no two
share a guard), recursion exactly when a held class is taken again, and learn
exactly the model's edges.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lockdep

CLASSES = "ABCD"

steps = st.lists(
    st.tuples(st.sampled_from(["lock", "lock", "trylock", "unlock"]), st.integers(0, 7)),
    max_size=40,
)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(steps)
def test_tracker_matches_reachability_model(ops: list[tuple[str, int]]) -> None:
    lockdep.reset()
    locks = [lockdep.Mutex(CLASSES[i // 2]) for i in range(8)]
    held: list[int] = []  # instance indexes, in acquisition order
    edges: dict[tuple[str, str], frozenset[str]] = {}  # edge -> its guards
    try:
        for op, i in ops:
            if op == "unlock":
                if held:
                    victim = held.pop(i % len(held))
                    locks[victim].unlock()
                continue
            lock, cls = locks[i], CLASSES[i // 2]
            if op == "trylock":
                got = lock.try_lock()
                assert got == (i not in held)
                if got:
                    held.append(i)
                continue
            expected = expect(cls, [CLASSES[h // 2] for h in held], edges)
            try:
                lock.lock()
            except lockdep.RecursiveLockError:
                assert expected == "recursive"
            except lockdep.LockOrderError as err:
                assert expected == "order"
                assert err.violation.classes[0] == cls
            else:
                assert expected is None, f"expected a {expected} violation"
                held.append(i)
            learned = {(e["from"], e["to"]) for e in lockdep.graph()["edges"]}
            assert learned == set(edges)
    finally:
        for h in reversed(held):
            locks[h].unlock()


def expect(
    cls: str, held_classes: list[str], edges: dict[tuple[str, str], frozenset[str]]
) -> str | None:
    """What taking cls should report; updates edges as lockdep does."""
    if cls in held_classes:
        return "recursive"
    verdict = None
    for h in dict.fromkeys(reversed(held_classes)):  # innermost first, each class once
        guards = frozenset(held_classes) - {h, cls}
        if (h, cls) in edges:
            old = edges[(h, cls)]
            edges[(h, cls)] = old & guards
            if edges[(h, cls)] != old and unguarded_cycle(edges, cls, h, edges[(h, cls)]):
                verdict = "order"
            continue
        if unguarded_cycle(edges, cls, h, guards):
            verdict = "order"
        else:
            edges[(h, cls)] = guards
    return verdict


def unguarded_cycle(
    edges: dict[tuple[str, str], frozenset[str]], start: str, end: str, guards: frozenset[str]
) -> bool:
    """Is there a simple path start -> ... -> end whose edges' guards are pairwise
    disjoint, and disjoint from ``guards`` (the closing edge's)? Such a cycle's edges
    can all be taken at once: a deadlock."""

    def walk(node: str, used: frozenset[str], seen: frozenset[str]) -> bool:
        for (x, y), edge_guards in edges.items():
            if x != node or y in seen or not edge_guards.isdisjoint(used):
                continue
            if y == end or walk(y, used | edge_guards, seen | {y}):
                return True
        return False

    return walk(start, guards, frozenset({start}))
