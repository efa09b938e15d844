"""The lock tracker: Ceph's ``lockdep_will_lock`` / ``lockdep_locked`` /
``lockdep_will_unlock`` for Python, as one façade over lockdep's parts.

There is one tracker per process (``LOCKDEP``). It owns the configuration and
the learned state, each part in its own module: the class ``registry``, the
``order`` between classes and the one between instances of a class, the chain
cache (``chains``), the threads' held stacks (``threads``, ``held``),
statistics (``lockstats``) and the violations seen (``violations``).
``reset()`` returns the learned state to the start.

An acquisition, before the thread blocks (``will_lock``):

1. the chain cache: if this held chain plus this class was validated before,
   nothing more (the lock types inline this lookup: their fast path);
2. a class the chain holds already (``_again``): the same lock taken again is
   a re-entry (recursive locks), a self-deadlock (a ``threading.Lock`` not
   known as a binary semaphore) or recursion; another instance of the class is
   recursion for a plain ``Mutex`` (Linux's rule) and, for locks that keep an
   instance order (``install()``'s, or ``Mutex(instance_order=True)``), an edge
   between the two instances, checked against their order;
3. otherwise (``_validate``): an edge from every held class to the new one, a
   cycle no guard serialises being an order violation; the transition is then
   cached.

Concurrency. One raw ``_thread`` lock (never itself tracked) guards the orders,
the registry and the cache's mutations; reads of the cache are plain dict
reads. No report, log call or user callback runs while it is held, and a thread
inside lockdep treats its own further acquisitions as untracked, so lockdep
cannot deadlock on itself, even when logging uses tracked locks. Work that may
arrive from a finalizer (a collected lock, a thread exiting) is queued and done
when the lock is next free.
"""

from __future__ import annotations

import _thread
import functools
import itertools
import os
import sys
import threading
from collections.abc import Callable
from time import monotonic, perf_counter
from types import FrameType
from typing import Any, Final

from . import chains, lockstats, report, violations
from . import held as hs
from .chains import Chain
from .held import CHAIN, CODE, EXTRA, LASTI, LOCK, TKEY, Entry, Extra
from .keys import SUBCLASSES, TRY, class_id, class_of_key, subclass_of_key
from .order import Order
from .registry import ClassRegistry
from .threads import Threads, ThreadState
from .values import ChainLink, EdgeInfo, HeldLock, Violation, label

DEFAULT_MAX_CLASSES = 131072
STACK_LIMIT = 32

# How a lock type treats a class the thread already holds (see will_lock).
STRICT: Final = 0  # Mutex: another instance of the class is recursion (Linux's rule)
INSTANCES: Final = 1  # an order among instances (install()'s RLock, Mutex(instance_order=True))
BINARY: Final = 2  # INSTANCES, and a non-owned lock: threading.Lock, asyncio.Lock

RawAcquire = Callable[[bool, float], bool]


class _Local(threading.local):
    held: list[Entry]
    state: ThreadState

    def __init__(self) -> None:
        LOCKDEP.threads.attach(self, [LOCKDEP.sentinel])


def capture(frame: FrameType | None) -> tuple[str, ...]:
    """A backtrace from frame, for reports."""
    import traceback

    return tuple(traceback.format_stack(frame, limit=STACK_LIMIT)) if frame is not None else ()


class Lockdep:
    """The process's lock tracker. Use the module functions of ``lockdep``, not this class."""

    def __init__(self) -> None:
        # Re-entrant only for the sake of fork (see _before_fork); nothing else
        # takes it twice, and _defer never runs queued work inside it.
        self._mutex: Any = _thread.RLock()
        self.root = Chain()
        self.sentinel: Entry = hs.sentinel(self.root)
        self.classes = Order()  # between graph keys
        self.instances = Order()  # between live instances (numbered by _new_instance)
        self.registry = ClassRegistry(DEFAULT_MAX_CLASSES, self._forget_class)
        self.violations = violations.ViolationLog()
        self.threads = Threads(lambda state: self._defer(lambda: self._retire(state)))
        self.semaphores: set[int] = set()  # classes seen used as binary semaphores
        self._instance_numbers = itertools.count(1)
        # configuration
        self.enabled = True
        self.on_violation: str | Callable[[Violation], object] = "raise"
        self.backtrace = False
        self.stats_enabled = False
        self.wait_timeout: float | None = None
        # state
        self.mode = "fast"  # "fast", "checked" (stats, backtraces, wait timeouts) or "plain"
        self.exhausted = False
        self.checks = 0
        self.cache_hits = 0
        self._mode_listeners: list[Callable[[str], None]] = []
        self._retired_stats: dict[int, lockstats.Record] = {}
        self._pending: list[Callable[[], None]] = []
        self.local: _Local  # set right after construction (its __init__ needs LOCKDEP)

    # --- threads, and work deferred from finalizers ------------------------------

    def _retire(self, state: ThreadState) -> None:
        if self.threads.drop(state):
            lockstats.merge(self._retired_stats, state.stats)

    def thread_state(self, ident: int) -> ThreadState | None:
        if ident == _thread.get_ident():
            return self.local.state
        return self.threads.get(ident)

    def states(self) -> list[ThreadState]:
        return self.threads.states()

    def _defer(self, action: Callable[[], None]) -> None:
        self._pending.append(action)
        if not self._mutex._is_owned() and self._mutex.acquire(False):
            try:
                self._run_pending()
            finally:
                self._mutex.release()

    def _run_pending(self) -> None:
        while self._pending:
            action = self._pending.pop()
            try:
                action()
            except Exception:
                import traceback

                violations.log_safely(
                    "lockdep: internal error in deferred work:\n" + traceback.format_exc()
                )

    # --- configuration ----------------------------------------------------------

    def add_mode_listener(self, listener: Callable[[str], None]) -> None:
        """listener(mode) is called now and whenever the mode changes."""
        self._mode_listeners.append(listener)
        listener(self.mode)

    def update_mode(self) -> None:
        if not self.enabled or self.exhausted:
            mode = "plain"
        elif self.stats_enabled or self.backtrace or self.wait_timeout is not None:
            mode = "checked"
        else:
            mode = "fast"
        if mode == self.mode:
            return
        leaving_plain = self.mode == "plain"
        self.mode = mode
        for listener in self._mode_listeners:
            listener(mode)
        if mode == "plain" or leaving_plain:
            # Entering: nothing is pushed or popped while plain, so the stacks
            # would go stale (the lock types' listeners have taken what they
            # need from them). Leaving: a thread that was half-way through a
            # push when the mode changed may have left an entry. Locks still
            # held count as untracked.
            for state in self.states():
                del state.held[1:]

    @property
    def tracking(self) -> bool:
        return self.mode != "plain"

    # --- classes and instances ------------------------------------------------------

    def register(self, name: str) -> int:
        """Take a reference to name's class; -1 when the class limit is reached."""
        with self._mutex:
            self._run_pending()
            cid = self.registry.register(name)
            if cid is not None:
                return cid
            newly = not self.exhausted
            self.exhausted = True
            limit, count = self.registry.max_classes, len(self.registry)
        if newly:
            violations.log_safely(report.format_limit(limit, count, name))
            self.update_mode()
        return -1

    def unregister(self, class_id: int) -> None:
        with self._mutex:
            self._run_pending()
            self.registry.unregister(class_id)

    def unregister_later(self, class_id: int) -> None:
        """unregister() for finalizers: never blocks."""
        self._defer(lambda: self.registry.unregister(class_id))

    def forget_instance_later(self, number: int) -> None:
        """A lock with an instance number is gone (from its finalizer): never blocks."""
        self._defer(lambda: self.instances.remove(number))

    def set_max_classes(self, limit: int) -> None:
        with self._mutex:
            self.registry.max_classes = limit
            lifted = self.exhausted and len(self.registry) < limit
            if lifted:
                self.exhausted = False
        if lifted:
            self.update_mode()

    def _forget_class(self, class_id: int) -> None:
        # Called by the registry, under the mutex, before an id is reused.
        base = class_id * SUBCLASSES
        for key in range(base, base + SUBCLASSES):
            self.classes.remove(key)
        chains.clear(self.root)
        self.semaphores.discard(class_id)
        self._retired_stats.pop(class_id, None)
        for state in self.states():
            state.stats.pop(class_id, None)

    def name_of(self, class_id: int) -> str:
        try:
            return self.registry.name(class_id)
        except KeyError:
            return f"<forgotten class {class_id}>"

    def class_label(self, key: int) -> str:
        """The label of a graph key (class_id * 8 + subclass)."""
        return label(self.name_of(class_of_key(key)), subclass_of_key(key))

    def describe(self, entry: Entry) -> HeldLock:
        lock = entry[LOCK]
        return hs.describe(
            entry, self.name_of(class_id(entry[TKEY])), getattr(lock, "_lockdep_node", 0)
        )

    def note_semaphore(self, tkey: int) -> None:
        """A lock of this class was released by a thread other than its taker."""
        self.semaphores.add(class_id(tkey))

    def _instance(self, lock: Any) -> int:
        number: int = lock._lockdep_node
        if not number:
            number = lock._lockdep_node = next(self._instance_numbers)
        return number

    # --- acquisition ----------------------------------------------------------------

    def acquire(
        self,
        lock: object,
        raw_acquire: RawAcquire,
        tkey: int | None,
        blocking: bool,
        timeout: float,
        frame: FrameType | None,
        *,
        recursive: bool = False,
        backtrace: bool = False,
        policy: int = STRICT,
    ) -> bool:
        """Check and take a tracked lock (the lock types' checked path).

        ``raw_acquire(blocking, timeout)`` takes the underlying lock; its result
        is returned. tkey None means an untracked lock; a non-blocking acquire
        is a trylock. Violations are delivered before blocking; with
        ``on_violation="raise"`` the exception propagates and nothing is taken.
        """
        local = self.local
        state = local.state
        if tkey is None or self.mode == "plain" or state.busy:
            return raw_acquire(blocking, timeout)
        held = local.held
        if not blocking:
            tkey |= TRY
        stack = capture(frame) if backtrace or self.backtrace else None
        node, reentry = self.will_lock(
            lock, tkey, held, frame, stack, recursive=recursive, policy=policy
        )
        if self.stats_enabled:
            record = lockstats.record_for(state.stats, class_id(tkey))
            got = lockstats.timed_acquire(
                record, self._watched(lock, raw_acquire, tkey, frame), blocking, timeout
            )
        elif blocking and self.wait_timeout is not None:
            got = self._watched(lock, raw_acquire, tkey, frame)(True, timeout)
        else:
            got = raw_acquire(blocking, timeout)
        if got:
            self.locked(held, lock, tkey, node, frame, stack, reentry=reentry)
        return got

    def will_lock(
        self,
        lock: object,
        tkey: int,
        held: list[Entry],
        frame: FrameType | None,
        stack: tuple[str, ...] | None,
        *,
        recursive: bool = False,
        policy: int = STRICT,
    ) -> tuple[Chain, bool]:
        """Check an acquisition of tkey on top of held, before blocking.

        Returns the chain node to push with it, and whether it re-enters a
        recursive lock its owner holds. A trylock (tkey has TRY) is not checked:
        it cannot deadlock, and gets no edge into its class.
        """
        node = held[-1][CHAIN]
        nxt = node.get(tkey)
        if nxt is not None:
            if self.stats_enabled:
                self.cache_hits += 1
            return nxt, False
        key = tkey >> 2
        if key in node.classes:
            return self._again(lock, tkey, key, held, node, frame, stack, recursive, policy)
        if tkey & TRY:
            return chains.child(node, tkey), False
        return self._validate(lock, tkey, held, frame, stack), False

    def _again(
        self,
        lock: Any,
        tkey: int,
        key: int,
        held: list[Entry],
        node: Chain,
        frame: FrameType | None,
        stack: tuple[str, ...] | None,
        recursive: bool,
        policy: int,
    ) -> tuple[Chain, bool]:
        """An acquisition of a class the chain holds already (see the module docstring)."""
        index = hs.innermost(held, key)
        if not index:  # a stale chain: validate from scratch
            return self._validate(lock, tkey, held, frame, stack), False
        earlier = held[index]
        if earlier[LOCK] is lock:
            if recursive:
                return node, True
            if not tkey & TRY and not (policy == BINARY and self._maybe_semaphore(tkey, earlier)):
                self._report_recursive(lock, tkey, frame, stack, held, earlier)
            return node, False
        if tkey & TRY:
            return node, False
        if policy == STRICT:
            self._report_recursive(lock, tkey, frame, stack, held, earlier)
            return node, False
        same = node.same
        if (same is None or tkey not in same) and self._validate_again(
            lock, tkey, held, node, frame, stack
        ):
            return node, False  # reported but not raised: go on
        source, target = self._instance(earlier[LOCK]), self._instance(lock)
        info = self.instances.known.get(source << 32 | target)
        if info is None or (info.guards and not info.guards <= node.guards):
            self._order_instances(lock, tkey, held, node, earlier, source, target, frame, stack)
        return node, False

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
        lock: object,
        tkey: int,
        held: list[Entry],
        frame: FrameType | None,
        stack: tuple[str, ...] | None,
    ) -> Chain:
        """The slow path of a blocking acquisition of a new class: the edges into it.

        Returns the chain node to push: the cached child, or, after a violation
        reported but not raised, a detached node (checked again next time).
        """
        state = self.local.state
        state.busy = True
        try:
            with self._mutex:
                self._run_pending()
                self.checks += 1
                hs.prune_abandoned(held)
                node = held[-1][CHAIN]
                cached = node.get(tkey)
                if cached is not None:
                    return cached
                violation = self._class_edges(lock, tkey, held, node, frame, stack)
                if violation is None:
                    return chains.child(node, tkey)
            self.violations.deliver(violation, self.on_violation)
        finally:
            state.busy = False
        return chains.extended(node, tkey)

    def _validate_again(
        self,
        lock: object,
        tkey: int,
        held: list[Entry],
        node: Chain,
        frame: FrameType | None,
        stack: tuple[str, ...] | None,
    ) -> bool:
        """The class-level check of taking a held class again: edges into it from the
        classes taken since. Whether a violation was reported (and not raised)."""
        state = self.local.state
        state.busy = True
        try:
            with self._mutex:
                self._run_pending()
                self.checks += 1
                violation = self._class_edges(lock, tkey, held, node, frame, stack)
                if violation is None:
                    chains.mark_same(node, tkey)
                    return False
            self.violations.deliver(violation, self.on_violation)
        finally:
            state.busy = False
        return True

    def _class_edges(
        self,
        lock: object,
        tkey: int,
        held: list[Entry],
        node: Chain,
        frame: FrameType | None,
        stack: tuple[str, ...] | None,
    ) -> Violation | None:
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
        first: Violation | None = None
        for source, entry in sources.items():
            guards = node.guards - {source, key}
            make_info = functools.partial(self._edge_info, entry, frame, stack)
            path = self.classes.sight(source, key, guards, make_info)
            if path is not None and first is None:
                chain = [
                    ChainLink(self.class_label(a), self.class_label(b), info)
                    for a, b, info in self.classes.links(path)
                ]
                first = violations.order(
                    self._held(held),
                    self._taking(lock, tkey, frame, stack),
                    self.describe(entry),
                    [self.class_label(k) for k in path],
                    chain,
                )
        return first

    def _order_instances(
        self,
        lock: object,
        tkey: int,
        held: list[Entry],
        node: Chain,
        earlier: Entry,
        source: int,
        target: int,
        frame: FrameType | None,
        stack: tuple[str, ...] | None,
    ) -> None:
        """An edge between two instances of one class: new, or seen with fewer guards."""
        state = self.local.state
        state.busy = True
        try:
            with self._mutex:
                self._run_pending()
                self.checks += 1
                guards = node.guards - {tkey >> 2}
                path = self.instances.sight(
                    source, target, guards, lambda: self._edge_info(earlier, frame, stack)
                )
                if path is None:
                    return
                name = self.class_label(tkey >> 2)
                chain = [
                    ChainLink(f"{name}#{a}", f"{name}#{b}", info)
                    for a, b, info in self.instances.links(path)
                ]
                violation = violations.instance_order(
                    self._held(held),
                    self._taking(lock, tkey, frame, stack),
                    self.describe(earlier),
                    chain,
                )
            self.violations.deliver(violation, self.on_violation)
        finally:
            state.busy = False

    def _edge_info(
        self, entry: Entry, frame: FrameType | None, stack: tuple[str, ...] | None
    ) -> EdgeInfo:
        extra = entry[EXTRA]
        return EdgeInfo(
            thread=threading.current_thread().name,
            from_site=hs.entry_site(entry),
            to_site=hs.frame_site(frame),
            from_stack=extra.stack if extra is not None else None,
            to_stack=stack,
        )

    def locked(
        self,
        held: list[Entry],
        lock: Any,
        tkey: int,
        node: Chain,
        frame: FrameType | None,
        stack: tuple[str, ...] | None = None,
        *,
        reentry: bool = False,
    ) -> None:
        """Push an acquisition that will_lock allowed, once the lock is taken."""
        extra = None
        if stack is not None or reentry or self.stats_enabled:
            extra = Extra(stack, perf_counter(), reentry)
        lock._lockdep_pos = len(held)
        if frame is None:
            held.append((lock, tkey, node, None, -1, extra))
        else:
            held.append((lock, tkey, node, frame.f_code, frame.f_lasti, extra))

    def _watched(
        self, lock: object, raw_acquire: RawAcquire, tkey: int, frame: FrameType | None
    ) -> RawAcquire:
        """raw_acquire, reporting a blocking wait longer than wait_timeout (then waiting on)."""
        limit = self.wait_timeout
        if limit is None:
            return raw_acquire

        def acquire(blocking: bool, timeout: float) -> bool:
            if not blocking or 0 <= timeout <= limit:
                return raw_acquire(blocking, timeout)
            start = monotonic()
            if raw_acquire(True, limit):
                return True
            self._report_wait(lock, tkey, frame, monotonic() - start)
            remaining = -1.0 if timeout < 0 else max(0.0, timeout - (monotonic() - start))
            return raw_acquire(True, remaining)

        return acquire

    # --- release --------------------------------------------------------------------

    def pop_entry(self, lock: object, read: bool = False) -> Entry | None:
        """Take this thread's most recent entry for lock off its stack (any position)."""
        held = self.local.held
        index = hs.find(held, lock, read)
        if not index:
            return None
        entry = hs.remove_at(held, index)
        extra = entry[EXTRA]
        if extra is not None and self.stats_enabled and not extra.reentry:
            record = lockstats.record_for(self.local.state.stats, class_id(entry[TKEY]))
            lockstats.count_hold(record, perf_counter() - extra.since)
        return entry

    def find_holders(self, lock: object) -> list[tuple[ThreadState, Entry]]:
        """Every other thread's most recent entry for lock."""
        me = _thread.get_ident()
        found = []
        for state in self.states():
            if state.ident != me:
                held = list(state.held)
                index = hs.find(held, lock)
                if index:
                    found.append((state, held[index]))
        return found

    def remove_from(self, state: ThreadState, lock: object) -> None:
        """Take another thread's entry for lock off its stack (a release on its behalf)."""
        try:
            hs.remove(state.held, lock)
        except IndexError:
            pass  # that thread changed its stack meanwhile

    # --- queries --------------------------------------------------------------------

    def held_locks(self, ident: int) -> list[HeldLock]:
        state = self.thread_state(ident)
        if state is None:
            return []
        if ident == _thread.get_ident():
            hs.prune_abandoned(state.held)
        return self._held(list(state.held))

    def _held(self, held: list[Entry]) -> list[HeldLock]:
        return [self.describe(e) for e in hs.live(held)]

    def graph_data(self) -> dict[str, Any]:
        with self._mutex:
            self._run_pending()
            classes = [
                {"id": cid, "name": name, "references": refs} for cid, name, refs in self.registry
            ]
            edges = []
            for source, target, info in self.classes.graph.edges():
                edges.append(
                    {
                        "from": self.name_of(class_of_key(source)),
                        "from_subclass": subclass_of_key(source),
                        "to": self.name_of(class_of_key(target)),
                        "to_subclass": subclass_of_key(target),
                        **info.as_dict(),
                        "guards": sorted(self.class_label(g) for g in info.guards),
                    }
                )
        return {"classes": classes, "edges": edges}

    def stats_data(self) -> dict[str, Any]:
        with self._mutex:
            self._run_pending()
            merged: dict[int, lockstats.Record] = {}
            lockstats.merge(merged, self._retired_stats)
            for state in self.states():
                lockstats.merge(merged, state.stats)
            locks = lockstats.summarize(merged, ((cid, name) for cid, name, _ in self.registry))
            return {
                "enabled": self.enabled,
                "mode": self.mode,
                "validating": self.tracking,
                "classes": len(self.registry),
                "max_classes": self.registry.max_classes,
                "edges": self.classes.graph.edge_count(),
                "instances": len(self.instances),
                "instance_edges": self.instances.graph.edge_count(),
                "checks": self.checks,
                "cache_hits": self.cache_hits if self.stats_enabled else None,
                "violations": self.violations.total(),
                "violations_by_kind": dict(self.violations.counts),
                "threads": len(self.threads),
                "locks": locks,
            }

    def reset(self) -> None:
        with self._mutex:
            self._run_pending()
            self.classes.clear()
            self.instances.clear()
            chains.clear(self.root)
            self.registry.forget_unused()
            self.semaphores.clear()
            self.checks = 0
            self.cache_hits = 0
            self._retired_stats.clear()
            for state in self.states():
                state.stats.clear()
            exhausted, self.exhausted = self.exhausted, False
        self.violations.clear()
        if exhausted:
            self.update_mode()

    # --- reports --------------------------------------------------------------------

    def _taking(
        self, lock: object, tkey: int, frame: FrameType | None, stack: tuple[str, ...] | None
    ) -> HeldLock:
        extra = Extra(stack, 0.0, False)
        code, lasti = (frame.f_code, frame.f_lasti) if frame is not None else (None, -1)
        return self.describe((lock, tkey, self.root, code, lasti, extra))

    def _deliver(self, build: Callable[[], Violation]) -> None:
        """Build and deliver a violation with this thread marked as inside lockdep."""
        state = self.local.state
        busy, state.busy = state.busy, True
        try:
            self.violations.deliver(build(), self.on_violation)
        finally:
            state.busy = busy

    def _report_recursive(
        self,
        lock: object,
        tkey: int,
        frame: FrameType | None,
        stack: tuple[str, ...] | None,
        held: list[Entry],
        earlier: Entry,
    ) -> None:
        self._deliver(
            lambda: violations.recursive(
                self._held(held),
                self._taking(lock, tkey, frame, stack),
                self.describe(earlier),
                earlier[LOCK] is lock,
            )
        )

    def report_unlock(self, lock: object, tkey: int, frame: FrameType | None) -> None:
        """An owner-checked lock released by a thread that does not hold it."""

        def build() -> Violation:
            holder = None
            holders = self.find_holders(lock)
            if holders:
                other, entry = holders[0]
                name = _thread_names().get(other.ident, "?")
                holder = f"thread '{name}' (ident {other.ident}) since {hs.entry_site(entry)}"
            return violations.unlock(
                self.held_locks(_thread.get_ident()),
                self.class_label(tkey >> 2),
                hs.frame_site(frame),
                holder,
            )

        self._deliver(build)

    def _report_wait(self, lock: object, tkey: int, frame: FrameType | None, waited: float) -> None:
        def build() -> Violation:
            import traceback

            names = _thread_names()
            frames = sys._current_frames()
            holders: list[tuple[str, HeldLock | None, list[str]]] = []
            for other, entry in self.find_holders(lock):
                where = frames.get(other.ident)
                stack = traceback.format_stack(where) if where is not None else []
                who = f"thread '{names.get(other.ident, '?')}' (ident {other.ident})"
                holders.append((who, self.describe(entry), stack))
            return violations.wait_timeout(
                self.held_locks(_thread.get_ident()),
                self.class_label(tkey >> 2),
                hs.frame_site(frame),
                waited,
                holders,
            )

        self._deliver(build)


def _thread_names() -> dict[int | None, str]:
    return {t.ident: t.name for t in threading.enumerate()}


LOCKDEP = Lockdep()
LOCKDEP.local = _Local()


def _before_fork() -> None:
    # Fork with the mutex held by the forking thread, so that no other thread is
    # half-way through the graph. In the child, threading's own after-fork
    # handler runs before ours and makes an RLock (a tracked one, once
    # installed): the mutex is re-entrant so that it can register its class.
    LOCKDEP._mutex.acquire()


def _after_fork_in_parent() -> None:
    LOCKDEP._mutex.release()


def _after_fork_in_child() -> None:
    tracker = LOCKDEP
    tracker._mutex.release()
    tracker.violations.after_fork()
    for state in tracker.threads.keep_only(_thread.get_ident()):  # threads gone in the child
        lockstats.merge(tracker._retired_stats, state.stats)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )
