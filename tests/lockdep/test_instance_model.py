"""Property: the order among instances of one class against a plain model.

Random sequences of lock, trylock and unlock (in any order) over two classes
with three instances each, all ``Mutex(instance_order=True)``, in one thread.
The model keeps the edges between classes and between instances, each with
its guards (the classes held besides the edge's own, intersected over
sightings), and finds cycles by enumerating simple paths. lockdep must report
an order violation exactly when the model finds a cycle no guard serialises
(between classes, or among instances), recursion exactly when an instance is
taken again by its holder, and learn exactly the model's class edges.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

import lockdep
from tests.lockdep.test_model import unguarded_cycle

CLASSES = "AB"
PER_CLASS = 3
Edges = dict[tuple[str, str], frozenset[str]]

steps = st.lists(
    st.tuples(st.sampled_from(["lock", "lock", "lock", "trylock", "unlock"]), st.integers(0, 5)),
    max_size=40,
)


def cls_of(i: int) -> str:
    return CLASSES[i // PER_CLASS]


@settings(max_examples=300, deadline=None)
@given(steps)
def test_instance_order_matches_the_model(ops: list[tuple[str, int]]) -> None:
    lockdep.reset()
    locks = [lockdep.Mutex(cls_of(i), instance_order=True) for i in range(2 * PER_CLASS)]
    held: list[int] = []
    trylocked: set[int] = set()  # held instances taken by a trylock
    class_edges: Edges = {}
    instance_edges: Edges = {}
    try:
        for op, i in ops:
            if op == "unlock":
                if held:
                    victim = held.pop(i % len(held))
                    trylocked.discard(victim)
                    locks[victim].unlock()
                continue
            if op == "trylock":
                got = locks[i].try_lock()
                assert got == (i not in held)
                if got:
                    held.append(i)
                    trylocked.add(i)
                continue
            expected = expect(i, held, trylocked, class_edges, instance_edges)
            try:
                locks[i].lock()
            except lockdep.RecursiveLockError:
                assert expected == "recursive"
            except lockdep.LockOrderError as err:
                assert expected == "order", err.violation.report
            else:
                assert expected is None, f"expected a {expected} violation"
                held.append(i)
            learned = {(e["from"], e["to"]) for e in lockdep.graph()["edges"]}
            assert learned == set(class_edges)
    finally:
        for h in reversed(held):
            locks[h].unlock()


def expect(
    new: int, held: list[int], trylocked: set[int], class_edges: Edges, instance_edges: Edges
) -> str | None:
    """What taking instance ``new`` should report; updates the edges as lockdep does."""
    if new in held:
        return "recursive"
    cls = cls_of(new)
    held_classes = [cls_of(h) for h in held]
    if sight_all(cls, held_classes, class_edges):
        return "order"
    # Edges from the held instances of the class, the innermost first, down to the
    # first one taken blocking; guards: the held classes besides the class itself.
    guards = frozenset(held_classes) - {cls}
    verdict = None
    for source in reversed([h for h in held if cls_of(h) == cls]):
        if sight(str(source), str(new), guards, instance_edges):
            verdict = "order"
        if source not in trylocked:
            break
    return verdict


def sight_all(cls: str, held_classes: list[str], edges: Edges) -> bool:
    """Edges from every other held class into cls; whether one closed an unguarded cycle."""
    found = False
    for h in dict.fromkeys(reversed(held_classes)):  # innermost first, each class once
        if h != cls and sight(h, cls, frozenset(held_classes) - {h, cls}, edges):
            found = True
    return found


def sight(source: str, target: str, guards: frozenset[str], edges: Edges) -> bool:
    """Record source -> target seen under guards; whether it closes an unguarded cycle."""
    if (source, target) in edges:
        old = edges[(source, target)]
        edges[(source, target)] = old & guards
        return edges[(source, target)] != old and unguarded_cycle(
            edges, target, source, edges[(source, target)]
        )
    if unguarded_cycle(edges, target, source, guards):
        return True
    edges[(source, target)] = guards
    return False
