"""The chain cache: which acquisitions on top of which held chains were validated.

A trie of ``Chain`` nodes. The node of a held stack is reached from the root
through the ``tkey`` of each entry that brings a new graph key (class and
subclass) into the stack, in order of first appearance; an entry whose graph key
is already held leaves the node as it is. So a thread holding 3,000 locks of one
class (``concurrent.futures.as_completed`` holds every future's) is at depth 1,
and what a node stands for is a set of held classes in an order, which is all
that validity depends on.

A child under key k exists only once taking k on top of that chain was
validated: every edge from a held class to k exists and none closes an
unguarded cycle. A lock whose child is there is taken with no graph work and no
shared lock: that is the fast path the lock types inline
(``held[-1][CHAIN].get(tkey)``).

Acquisitions of a class already in the chain (nested instances of one class,
re-entries) are never children, so the fast path always misses them: they go
to the tracker, which checks the instances' order. ``same`` records, per node,
which of those were validated at the class level (edges from the other held
classes into the class), with the guards of an edge between two instances.

Mutations happen under the tracker's mutex; lookups are plain dict reads.
"""

from __future__ import annotations

from .keys import READ, graph_key

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any


class Chain(dict["int | None", "Chain"]):
    """A node of the chain cache: validated transitions by tkey, and what the chain
    holds: ``classes``, the graph keys held; ``guards``, those held in write mode
    (the candidate guards of an edge taken on top of it)."""

    __slots__ = ("classes", "guards", "same")

    def __init__(
        self, classes: frozenset[int] = frozenset(), guards: frozenset[int] = frozenset()
    ) -> None:
        super().__init__()
        self.classes = classes
        self.guards = guards
        self.same: dict[int, frozenset[int]] | None = None

    def __repr__(self) -> str:
        return f"<Chain classes={sorted(self.classes)} children={len(self)}>"


def extended(node: Chain, tkey: int) -> Chain:
    """A new, detached node for node's chain plus tkey (a class not in it)."""
    key = graph_key(tkey)
    guards = node.guards if tkey & READ else node.guards | {key}
    return Chain(node.classes | {key}, guards)


def child(node: Chain, tkey: int) -> Chain:
    """The cached child of node under tkey, made if needed: the transition is valid."""
    nxt = node.get(tkey)
    if nxt is None:
        nxt = node[tkey] = extended(node, tkey)
    return nxt


def advance(node: Chain, tkey: int) -> Chain:
    """The node for node's chain plus an entry of tkey: node itself when its class is
    held already, the cached child when validated, else a detached node (a cold
    cache is always safe: the next acquisition on top of it is checked)."""
    if graph_key(tkey) in node.classes:
        return node
    nxt = node.get(tkey)
    return nxt if nxt is not None else extended(node, tkey)


def mark_same(node: Chain, tkey: int, guards: frozenset[int]) -> None:
    """Record that taking tkey's class again on top of node was validated, and the
    guards of the edge between the two instances of the class."""
    same = node.same
    if same is None:
        same = node.same = {}
    same[tkey] = guards


def clear(root: Chain) -> None:
    """Forget every validated transition, in place: threads holding locks keep
    pointing into the trie and must find nothing cached there."""
    todo: list[Any] = [root]
    while todo:
        node = todo.pop()
        todo.extend(node.values())
        node.clear()
        node.same = None
