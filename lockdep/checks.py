"""The checks made before a lock is taken (Ceph's ``lockdep_will_lock``): facts, not
violations.

``Checker.will_lock`` answers, for an acquisition of tkey on top of a held
stack, with the chain node to push, whether it re-enters a recursive lock, and
a fact when something is wrong: ``Recursion`` (the class is held already, in a
way that deadlocks) or ``Cycle`` (the new edge closes a cycle that no guard
serialises, between classes or between instances of one class). The tracker
turns facts into violations and delivers them; the checker never reports.

1. The chain cache (``chains``): if this held chain plus this class was
   validated before, nothing more. The lock types inline this lookup: their
   fast path.
2. A class the chain holds already (``again``): the same lock taken again is a
   re-entry (recursive locks), a self-deadlock (a lock without owner, unless it
   may be a binary semaphore) or recursion; another instance of the class is
   recursion under Linux's rule (``STRICT``), else an edge between the two
   instances, checked against their order (``INSTANCES``, ``BINARY``).
3. Otherwise (``_validate``): an edge from every held class to the new one;
   the transition is then cached.

Concurrency. Mutations happen under the tracker's mutex, with the thread
marked busy (a finalizer run by the garbage collector meanwhile must not
re-enter the graphs through a tracked lock); lookups (the cache, ``known``)
are plain dict reads.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from types import FrameType

from . import chains
from . import held as hs
from .chains import Chain
from .held import CHAIN, CODE, EXTRA, LASTI, LOCK, TKEY, Entry
from .keys import SUBCLASSES, TRY, class_id
from .order import Order
from .threads import ThreadState
from .values import EdgeInfo

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any, Final, NamedTuple
else:
    from .records import NamedTuple  # typing's, without importing typing

# How a lock type treats a class the thread already holds.
STRICT: Final = 0  # Mutex: another instance of the class is recursion (Linux's rule)
INSTANCES: Final = 1  # an order among instances (install()'s RLock, Mutex(instance_order=True))
BINARY: Final = 2  # INSTANCES, and a lock without owner: threading.Lock, asyncio.Lock


class Recursion(NamedTuple):
    """Taking a class the thread holds, in a way that deadlocks: ``earlier`` is the
    held entry (of the same lock: a self-deadlock; of another instance: recursion)."""

    earlier: Entry


class Cycle(NamedTuple):
    """The edge from ``holding``'s lock to the new one would close a cycle: ``path`` is
    the existing path back, [new, ..., held], as graph keys or instance numbers
    (``instances``), with the edges along it in ``links``."""

    holding: Entry
    path: list[int]
    links: list[tuple[int, int, EdgeInfo]]
    instances: bool


Fact = Recursion | Cycle
Stack = tuple[str, ...] | None


class Checker:
    """The checks, and what they learn: the chain cache (``root``), the order between
    classes (``classes``) and between instances (``instances``), and the classes
    seen used as binary semaphores."""

    def __init__(self, mutex: Any, run_pending: Callable[[], None]) -> None:
        self._mutex = mutex
        self._run_pending = run_pending
        self.root = Chain()
        self.classes = Order()
        self.instances = Order()
        self.semaphores: set[int] = set()
        self._numbers = itertools.count(1)
        self.checks = 0
        self.cache_hits = 0
        self.count_hits = False  # statistics on: count the cache's hits

    # --- what it learned ------------------------------------------------------------

    def clear(self) -> None:
        """Forget everything learned (under the mutex)."""
        self.classes.clear()
        self.instances.clear()
        chains.clear(self.root)
        self.semaphores.clear()
        self.checks = 0
        self.cache_hits = 0

    def forget_class(self, class_id: int) -> None:
        """A class id is about to be reused (under the mutex)."""
        base = class_id * SUBCLASSES
        for key in range(base, base + SUBCLASSES):
            self.classes.remove(key)
        chains.clear(self.root)
        self.semaphores.discard(class_id)

    def instance(self, lock: Any) -> int:
        """lock's instance number, given the first time it is asked for."""
        number: int = lock._lockdep_node
        if not number:
            number = lock._lockdep_node = next(self._numbers)
        return number

    # --- the checks -----------------------------------------------------------------

    def will_lock(
        self,
        lock: Any,
        tkey: int,
        held: list[Entry],
        frame: FrameType | None,
        stack: Stack,
        state: ThreadState,
        *,
        recursive: bool = False,
        policy: int = STRICT,
    ) -> tuple[Chain, bool, Fact | None]:
        """Check an acquisition of tkey on top of held, before blocking.

        Returns the chain node to push with it, whether it re-enters a recursive
        lock its owner holds, and what is wrong, if anything. A trylock (tkey has
        TRY) is not checked: it cannot deadlock, and gets no edge into its class.
        """
        node = held[-1][CHAIN]
        nxt = node.get(tkey)
        if nxt is not None:
            if self.count_hits:
                self.cache_hits += 1
            return nxt, False, None
        key = tkey >> 2
        if key in node.classes:
            return self.again(lock, tkey, key, held, node, frame, stack, state, recursive, policy)
        if tkey & TRY:
            return chains.child(node, tkey), False, None
        return self._validate(tkey, held, frame, stack, state)

    def validated_again(self, lock: Any, tkey: int, held: list[Entry], node: Chain) -> bool:
        """The cached path of ``again``, for the lock types' fast path: whether taking
        lock (a class held already) on top of held was validated before. True only
        in the plain case: the top entry is another instance of the class, taken
        blocking; lock is free; the class-level check of this chain passed; and the
        edge between the two instances is known, with no guard it lacks now."""
        same = node.same
        if same is None:
            return False
        guards = same.get(tkey)
        top = held[-1]
        if guards is None or top[TKEY] != tkey:  # the same class, subclass, blocking
            return False
        previous = top[LOCK]
        if previous is lock or lock.locked():
            return False  # maybe held by this thread: the whole check
        source = previous._lockdep_node
        target = lock._lockdep_node
        if not source or not target:
            return False
        info = self.instances.known.get(source << 32 | target)
        return info is not None and (not info.guards or info.guards <= guards)

    def again(
        self,
        lock: Any,
        tkey: int,
        key: int,
        held: list[Entry],
        node: Chain,
        frame: FrameType | None,
        stack: Stack,
        state: ThreadState,
        recursive: bool,
        policy: int,
    ) -> tuple[Chain, bool, Fact | None]:
        """An acquisition of a class (graph key ``key``) the chain holds already."""
        if policy != STRICT:
            # The lock itself may be held below another instance of its class.
            if recursive:
                if lock.is_locked_by_me():
                    return node, True, None
            elif lock.locked():
                index = hs.find(held, lock)
                if index:
                    return node, False, self._same_lock(lock, tkey, held[index], policy)
        index = len(held) - 1  # the innermost entry of the class (hs.innermost, inline)
        while index:
            earlier = held[index]
            if earlier[TKEY] >> 2 == key and earlier[LOCK] is not None:
                break
            index -= 1
        else:  # a stale chain: validate from scratch
            return self._validate(tkey, held, frame, stack, state)
        if earlier[LOCK] is lock:
            if recursive:
                return node, True, None
            return node, False, self._same_lock(lock, tkey, earlier, policy)
        if tkey & TRY:
            return node, False, None
        if policy == STRICT:
            return node, False, Recursion(earlier)
        same = node.same
        guards = same.get(tkey) if same is not None else None
        if guards is None:
            fact = self._validate_again(tkey, held, node, frame, stack, state)
            if fact is not None:
                return node, False, fact
            guards = node.same[tkey]  # type: ignore[index]
        if earlier[TKEY] & TRY:  # no edge led into it: the chain goes on below
            return (
                node,
                False,
                self._order_below_trylocks(lock, key, held, index, guards, frame, stack, state),
            )
        previous = earlier[LOCK]
        source = previous._lockdep_node or self.instance(previous)
        target = lock._lockdep_node
        if not target:
            # Never nested before: an edge into it cannot close a cycle, only be learned.
            target = lock._lockdep_node = next(self._numbers)
            self.instances.learn_new(
                source, target, _edge_args(state, earlier, frame, stack), guards
            )
            return node, False, None
        known = self.instances.known.get(source << 32 | target)
        if known is None or (known.guards and not known.guards <= guards):
            return (
                node,
                False,
                self._order_instances(guards, earlier, source, target, frame, stack, state),
            )
        return node, False, None

    def _order_below_trylocks(
        self,
        lock: Any,
        key: int,
        held: list[Entry],
        index: int,
        guards: frozenset[int],
        frame: FrameType | None,
        stack: Stack,
        state: ThreadState,
    ) -> Fact | None:
        """Edges into lock from the held instances of its class, from the innermost
        (a trylock, which no edge led into) down to the first one taken blocking.

        One edge from the innermost instance is enough when it was taken blocking:
        an edge from each instance below led to it. A trylock breaks that chain.
        """
        target = self.instance(lock)
        first: Fact | None = None
        for i in range(index, 0, -1):
            entry = held[i]
            if entry[TKEY] >> 2 != key or entry[LOCK] is None:
                continue
            source = self.instance(entry[LOCK])
            fact = self._order_instances(guards, entry, source, target, frame, stack, state)
            first = first or fact
            if not entry[TKEY] & TRY:
                break
        return first

    def _same_lock(self, lock: Any, tkey: int, earlier: Entry, policy: int) -> Fact | None:
        """A non-recursive lock taken again by the thread that holds it (``earlier``)."""
        if tkey & TRY or (policy == BINARY and self._maybe_semaphore(tkey, earlier)):
            return None
        return Recursion(earlier)

    def _maybe_semaphore(self, tkey: int, earlier: Entry) -> bool:
        """Whether a lock without owner (threading.Lock), taken again by the thread
        that holds it, may be a binary semaphore that another thread will release:
        its class was seen used so, or its thread took it with an ``acquire()`` call
        (a thread waiting for a worker's signal does that). Taken by a ``with``
        block, it is a mutex, and waiting for itself is a self-deadlock."""
        if class_id(tkey) in self.semaphores:
            return True
        return not hs.in_with_statement(earlier[CODE], earlier[LASTI])

    def _validate(
        self,
        tkey: int,
        held: list[Entry],
        frame: FrameType | None,
        stack: Stack,
        state: ThreadState,
    ) -> tuple[Chain, bool, Fact | None]:
        """A blocking acquisition of a class the chain does not hold: the edges into it.
        The node is the cached child, or after a cycle a detached one (checked again
        next time)."""
        state.busy = True
        try:
            with self._mutex:
                self._run_pending()
                self.checks += 1
                hs.prune_abandoned(held)
                node = held[-1][CHAIN]
                cached = node.get(tkey)
                if cached is not None:
                    return cached, False, None
                fact = self._class_edges(tkey, held, node, frame, stack, state)
                if fact is None:
                    return chains.child(node, tkey), False, None
                return chains.extended(node, tkey), False, fact
        finally:
            state.busy = False

    def _validate_again(
        self,
        tkey: int,
        held: list[Entry],
        node: Chain,
        frame: FrameType | None,
        stack: Stack,
        state: ThreadState,
    ) -> Fact | None:
        """The class-level check of taking a held class again: edges into it from the
        classes taken since. Cached in the node when it passes."""
        state.busy = True
        try:
            with self._mutex:
                self._run_pending()
                self.checks += 1
                fact = self._class_edges(tkey, held, node, frame, stack, state)
                if fact is None:
                    # Guards of an edge between two instances of the class: not
                    # the class itself, held by the first instance at every sighting.
                    chains.mark_same(node, tkey, node.guards - {tkey >> 2})
                return fact
        finally:
            state.busy = False

    def _class_edges(
        self,
        tkey: int,
        held: list[Entry],
        node: Chain,
        frame: FrameType | None,
        stack: Stack,
        state: ThreadState,
    ) -> Cycle | None:
        # Under the mutex. An edge from every held class, not only the innermost:
        # an out-of-order release or a trylock leaves no transitive path to rely
        # on. Edges into the new class never change what it reaches, so checking
        # and adding one held class at a time equals checking them all first.
        key = tkey >> 2
        sources: dict[int, Entry] = {}  # class -> its innermost entry
        wanted = len(node.classes) - (key in node.classes)
        for i in range(len(held) - 1, 0, -1):
            entry = held[i]
            source = entry[TKEY] >> 2
            if entry[LOCK] is not None and source != key and source not in sources:
                sources[source] = entry
                if len(sources) == wanted:
                    break
        first: Cycle | None = None
        for source, entry in sources.items():
            guards = node.guards - {source, key}
            make_info = functools.partial(_edge_info, state, entry, frame, stack)
            path = self.classes.sight(source, key, guards, make_info)
            if path is not None and first is None:
                first = Cycle(entry, path, self.classes.links(path), instances=False)
        return first

    def _order_instances(
        self,
        guards: frozenset[int],
        earlier: Entry,
        source: int,
        target: int,
        frame: FrameType | None,
        stack: Stack,
        state: ThreadState,
    ) -> Cycle | None:
        """An edge between two instances of one class: new, or seen with fewer guards."""
        state.busy = True
        try:
            with self._mutex:
                self._run_pending()
                self.checks += 1
                make_info = functools.partial(_edge_info, state, earlier, frame, stack)
                path = self.instances.sight(source, target, guards, make_info)
                if path is None:
                    return None
                return Cycle(earlier, path, self.instances.links(path), instances=True)
        finally:
            state.busy = False


def _edge_args(
    state: ThreadState, entry: Entry, frame: FrameType | None, stack: Stack
) -> tuple[Any, ...]:
    """EdgeInfo's arguments for an edge from entry's lock to the one frame takes."""
    extra = entry[EXTRA]
    return (
        state.name,
        (entry[CODE], entry[LASTI]),
        (frame.f_code, frame.f_lasti) if frame is not None else (None, -1),
        extra.stack if extra is not None else None,
        stack,
    )


def _edge_info(state: ThreadState, entry: Entry, frame: FrameType | None, stack: Stack) -> EdgeInfo:
    return EdgeInfo(*_edge_args(state, entry, frame, stack))
