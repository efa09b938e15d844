"""Property: the tracker against a plain model of the lock-order graph.

Random sequences of lock, trylock and unlock (in any order) over four classes
with two instances each, in one thread. The model keeps the edges as a set and
answers reachability by brute force; lockdep must report a cycle exactly when
the model has one, recursion exactly when a held class is taken again, and
learn exactly the model's edges.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lockdep
from tests.lockdep.test_graph import reachable

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
    edges: set[tuple[str, str]] = set()
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
            assert learned == edges
    finally:
        for h in reversed(held):
            locks[h].unlock()


def expect(cls: str, held_classes: list[str], edges: set[tuple[str, str]]) -> str | None:
    """What taking cls should report; updates edges as lockdep does."""
    if cls in held_classes:
        return "recursive"
    verdict = None
    for h in dict.fromkeys(reversed(held_classes)):  # innermost first, each class once
        if (h, cls) in edges:
            continue
        if reachable(edges, cls, h):
            verdict = "order"
        else:
            edges.add((h, cls))
    return verdict
