"""The lock tracker: the chain cache and the checks made before a lock is taken.

Ceph's ``lockdep_will_lock`` / ``lockdep_locked`` / ``lockdep_will_unlock`` for
Python. There is one tracker per process (``LOCKDEP``); it owns the class
registry, the dependency graph, the chain cache, the threads' held stacks
(``held``), statistics (``lockstats``), the violations seen (``violations``)
and the configuration; ``reset()`` returns the learned state to the start.

Chain cache. A trie of dicts keyed by ``tkey``: the node reached from the root
through the keys of a held stack stands for that stack, and a child under key
k exists only once taking k on top of that stack was validated (every edge from
a held class to k exists and none closes a cycle). A lock whose next node is
already there is taken with no graph work and no shared lock: that is the fast
path the lock types inline. Everything else comes here.

Concurrency. One raw ``_thread`` lock (never itself tracked) guards the graph,
the registry and the cache's mutations; reads of the cache are plain dict
reads. No report, log call or user callback runs while it is held, and a thread
inside lockdep treats its own further acquisitions as untracked, so lockdep
cannot deadlock on itself, even when logging uses tracked locks. Work that may
arrive from a finalizer (a collected lock unregistering, a thread exiting) is
queued and done when the lock is next free.
"""

from __future__ import annotations

import _thread
import os
import sys
import threading
import weakref
from collections.abc import Callable
from itertools import pairwise
from time import monotonic, perf_counter
from types import FrameType
from typing import Any

from . import held as hs
from . import lockstats, report, violations
from .graph import DependencyGraph
from .held import CHAIN, EXTRA, LOCK, TKEY, TRY, Entry, Extra, ThreadState, Token
from .registry import ClassRegistry
from .report import ChainLink, EdgeInfo, HeldLock, Violation, label

DEFAULT_MAX_CLASSES = 131072
STACK_LIMIT = 32
RESPONSES = ("raise", "log", "abort")

RawAcquire = Callable[[bool, float], bool]


class _Local(threading.local):
    held: list[Entry]
    state: ThreadState
    token: Token

    def __init__(self) -> None:
        LOCKDEP._attach_thread(self)


def _capture(frame: FrameType | None) -> tuple[str, ...]:
    import traceback

    return tuple(traceback.format_stack(frame, limit=STACK_LIMIT)) if frame is not None else ()


def _nest(held: list[Entry], lock: object, tkey: int) -> tuple[int, bool]:
    """An unannotated acquisition's tkey, subclassed by how many other instances of its
    class are held; and whether it is plain (neither nested nor a re-acquisition)."""
    cid = hs.class_id(tkey)
    depth = 0
    again = False
    for i in range(1, len(held)):
        entry = held[i]
        if entry[LOCK] is lock:
            again = True
        elif hs.class_id(entry[TKEY]) == cid:
            depth += 1
    if depth:
        tkey = cid * hs.CLASS_STRIDE + min(depth, hs.SUBCLASSES - 1) * hs.SUBCLASS_STRIDE
    return tkey, not (depth or again)


def _thread_names() -> dict[int | None, str]:
    return {t.ident: t.name for t in threading.enumerate()}


class Lockdep:
    """The process's lock tracker. Use the module functions of ``lockdep``, not this class."""

    def __init__(self) -> None:
        # Re-entrant only for the sake of fork (see _before_fork); nothing else
        # takes it twice, and _defer never runs queued work inside it.
        self._mutex: Any = _thread.RLock()
        self.root: dict[Any, Any] = {}
        self.sentinel: Entry = (None, -1, self.root, None, -1, None)
        self.graph = DependencyGraph()
        self.registry = ClassRegistry(DEFAULT_MAX_CLASSES, self._forget_class)
        self.violations = violations.ViolationLog()
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
        self._threads: dict[int, ThreadState] = {}
        self._retired_stats: dict[int, lockstats.Record] = {}
        self._pending: list[Callable[[], None]] = []
        self.local: _Local  # set right after construction (its __init__ needs LOCKDEP)

    # --- threads ----------------------------------------------------------------

    def _attach_thread(self, local: _Local) -> None:
        held: list[Entry] = [self.sentinel]
        state = ThreadState(_thread.get_ident(), held)
        token = Token()
        state.token_ref = weakref.ref(token, lambda _ref: self._defer(lambda: self._retire(state)))
        local.held = held
        local.state = state
        local.token = token
        self._threads[state.ident] = state

    def _retire(self, state: ThreadState) -> None:
        if self._threads.get(state.ident) is state:
            del self._threads[state.ident]
        lockstats.merge(self._retired_stats, state.stats)

    def thread_state(self, ident: int) -> ThreadState | None:
        if ident == _thread.get_ident():
            return self.local.state
        return self._threads.get(ident)

    def states(self) -> list[ThreadState]:
        return list(self._threads.values())

    # --- deferred work (from finalizers) ----------------------------------------

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

                report.log_safely(
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

    # --- registry -----------------------------------------------------------------

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
            report.log_safely(report.format_limit(limit, count, name))
            self.update_mode()
        return -1

    def unregister(self, class_id: int) -> None:
        with self._mutex:
            self._run_pending()
            self.registry.unregister(class_id)

    def unregister_later(self, class_id: int) -> None:
        """unregister() for finalizers: never blocks."""
        self._defer(lambda: self.registry.unregister(class_id))

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
        base = class_id * hs.SUBCLASSES
        for key in range(base, base + hs.SUBCLASSES):
            self.graph.remove_node(key)
        self._clear_chains()
        self._retired_stats.pop(class_id, None)
        for state in self.states():
            state.stats.pop(class_id, None)

    def _clear_chains(self) -> None:
        # Clear every node in place: threads holding locks keep pointing into the
        # trie, and must find nothing cached there that involved the old class.
        todo = [self.root]
        while todo:
            node = todo.pop()
            todo.extend(node.values())
            node.clear()

    def name_of(self, class_id: int) -> str:
        try:
            return self.registry.name(class_id)
        except KeyError:
            return f"<forgotten class {class_id}>"

    def class_label(self, key: int) -> str:
        """The label of a graph node (class_id * 8 + subclass)."""
        return label(self.name_of(key // hs.SUBCLASSES), key % hs.SUBCLASSES)

    def describe(self, entry: Entry) -> HeldLock:
        return hs.describe(entry, self.name_of(hs.class_id(entry[TKEY])))

    # --- acquisition ----------------------------------------------------------------

    def acquire(
        self,
        lock: object,
        raw_acquire: RawAcquire,
        tkey: int | None,
        blocking: bool,
        timeout: float,
        frame: FrameType | None,
        recursive: bool = False,
        backtrace: bool = False,
        nest: bool = False,
    ) -> bool:
        """Check and take a tracked lock (the lock types' checked path).

        ``raw_acquire(blocking, timeout)`` takes the underlying lock; its result
        is returned. tkey None means an untracked lock. Violations are
        delivered before blocking; with ``on_violation="raise"`` the exception
        propagates and nothing is taken. ``nest``: see will_lock.
        """
        local = self.local
        state = local.state
        if tkey is None or self.mode == "plain" or state.busy:
            return raw_acquire(blocking, timeout)
        held = local.held
        if not blocking:
            tkey |= TRY
        stack = _capture(frame) if backtrace or self.backtrace else None
        chain, tkey, reentry = self.will_lock(lock, tkey, held, frame, stack, recursive, nest)
        if self.stats_enabled:
            record = lockstats.record_for(state.stats, hs.class_id(tkey))
            got = lockstats.timed_acquire(
                record, self._watched(lock, raw_acquire, tkey, frame), blocking, timeout
            )
        elif blocking and self.wait_timeout is not None:
            got = self._watched(lock, raw_acquire, tkey, frame)(True, timeout)
        else:
            got = raw_acquire(blocking, timeout)
        if got:
            self.locked(held, lock, tkey, chain, frame, stack, reentry)
        return got

    def will_lock(
        self,
        lock: object,
        tkey: int,
        held: list[Entry],
        frame: FrameType | None,
        stack: tuple[str, ...] | None,
        recursive: bool,
        nest: bool = False,
    ) -> tuple[dict[Any, Any], int, bool]:
        """Check an acquisition of tkey on top of held, before blocking.

        Returns the chain node and the tkey to push with it, and whether it
        re-enters a recursive lock its owner holds. A trylock (tkey has TRY) is
        not checked: it cannot deadlock, and gets no edge into its class.

        ``nest`` is for locks of code nobody annotated (``install()``), which
        keep the standard library's semantics: a ``threading.Lock`` may be
        taken again by its holder and released by another thread (a binary
        semaphore), so that is no violation; and instances of one class nested
        in each other (a logging handler flushing into another) get increasing
        subclasses by depth, as a ``nested(n)`` annotation would give them.
        """
        chain = held[-1][CHAIN]
        if recursive and hs.holds(held, lock):
            return chain, tkey, True
        if tkey & TRY:
            nxt = chain.get(tkey)
            return (nxt if nxt is not None else chain.setdefault(tkey, {})), tkey, False
        nxt = chain.get(tkey)
        if nxt is not None:
            if self.stats_enabled:
                self.cache_hits += 1
            return nxt, tkey, False
        hs.prune_abandoned(held)
        if nest:
            tkey, plain = _nest(held, lock, tkey)
            if not plain:
                return self._validate(lock, tkey, held, frame, stack, nested=True), tkey, False
        return self._validate(lock, tkey, held, frame, stack), tkey, False

    def locked(
        self,
        held: list[Entry],
        lock: object,
        tkey: int,
        chain: dict[Any, Any],
        frame: FrameType | None,
        stack: tuple[str, ...] | None = None,
        reentry: bool = False,
    ) -> None:
        """Push an acquisition that will_lock allowed, once the lock is taken."""
        extra = None
        if stack is not None or reentry or self.stats_enabled:
            extra = Extra(stack, perf_counter(), reentry)
        if frame is None:
            held.append((lock, tkey, chain, None, -1, extra))
        else:
            held.append((lock, tkey, chain, frame.f_code, frame.f_lasti, extra))

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

    def _validate(
        self,
        lock: object,
        tkey: int,
        held: list[Entry],
        frame: FrameType | None,
        stack: tuple[str, ...] | None,
        nested: bool = False,
    ) -> dict[Any, Any]:
        """The slow path of a blocking acquisition: recursion, then order.

        Returns the chain node to push. A violation, or a nested acquisition
        (see will_lock; not checked for recursion), gives a detached node, so
        that the transition is checked again next time.
        """
        key = hs.graph_key(tkey)
        if not nested:
            for i in range(len(held) - 1, 0, -1):
                if hs.graph_key(held[i][TKEY]) == key:
                    self._report_recursive(lock, tkey, frame, stack, held, held[i])
                    return {}  # reported but not raised: go on, uncached
        cache = not nested
        state = self.local.state
        state.busy = True
        try:
            with self._mutex:
                self._run_pending()
                self.checks += 1
                chain = held[-1][CHAIN]
                cached: dict[Any, Any] | None = chain.get(tkey) if cache else None
                if cached is not None:
                    return cached
                violation = self._add_edges(lock, tkey, held, frame, stack)
                if violation is None:
                    return chain.setdefault(tkey, {}) if cache else {}
            self.violations.deliver(violation, self.on_violation)
        finally:
            state.busy = False
        return {}  # reported but not raised: go on, uncached

    def _add_edges(
        self,
        lock: object,
        tkey: int,
        held: list[Entry],
        frame: FrameType | None,
        stack: tuple[str, ...] | None,
    ) -> Violation | None:
        # Under the mutex. An edge from every held class, not only the innermost:
        # an out-of-order release or a trylock leaves no transitive path to rely
        # on. Edges into the new class never change what it reaches, so checking
        # and adding one held class at a time equals checking them all first.
        key = hs.graph_key(tkey)
        graph = self.graph
        first: Violation | None = None
        to_site = None
        done = set()
        for i in range(len(held) - 1, 0, -1):
            entry = held[i]
            source = hs.graph_key(entry[TKEY])
            if source in done or source == key:  # the same key: a nested re-acquisition
                continue
            done.add(source)
            if graph.has_edge(source, key):
                graph.edge_data(source, key).count += 1
                continue
            if to_site is None:
                to_site = hs.frame_site(frame)
            extra = entry[EXTRA]
            info = EdgeInfo(
                thread=threading.current_thread().name,
                from_site=hs.entry_site(entry),
                to_site=to_site,
                from_stack=extra.stack if extra is not None else None,
                to_stack=stack,
            )
            cycle = graph.add_edge(source, key, info)
            if cycle is not None and first is None:
                chain = [
                    ChainLink(self.class_label(a), self.class_label(b), graph.edge_data(a, b))
                    for a, b in pairwise(cycle)
                ]
                first = violations.order(
                    [self.describe(e) for e in held[1:]],
                    self._taking(lock, tkey, frame, stack),
                    self.describe(entry),
                    [self.class_label(k) for k in cycle],
                    chain,
                )
        return first

    # --- release --------------------------------------------------------------------

    def pop_entry(self, lock: object, read: bool = False) -> Entry | None:
        """Take this thread's most recent entry for lock off its stack (any position)."""
        held = self.local.held
        index = hs.find(held, lock, read)
        if not index:
            return None
        entry = held.pop() if index == len(held) - 1 else hs.remove_at(held, index)
        extra = entry[EXTRA]
        if extra is not None and self.stats_enabled and not extra.reentry:
            record = lockstats.record_for(self.local.state.stats, hs.class_id(entry[TKEY]))
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
        return [self.describe(e) for e in list(state.held)[1:]]

    def graph_data(self) -> dict[str, Any]:
        with self._mutex:
            self._run_pending()
            classes = [
                {"id": cid, "name": name, "references": refs} for cid, name, refs in self.registry
            ]
            edges = []
            for source, target, info in self.graph.edges():
                edges.append(
                    {
                        "from": self.name_of(source // hs.SUBCLASSES),
                        "from_subclass": source % hs.SUBCLASSES,
                        "to": self.name_of(target // hs.SUBCLASSES),
                        "to_subclass": target % hs.SUBCLASSES,
                        **info.as_dict(),
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
                "edges": self.graph.edge_count(),
                "checks": self.checks,
                "cache_hits": self.cache_hits if self.stats_enabled else None,
                "violations": self.violations.total(),
                "violations_by_kind": dict(self.violations.counts),
                "threads": len(self._threads),
                "locks": locks,
            }

    def reset(self) -> None:
        with self._mutex:
            self._run_pending()
            self.graph.clear()
            self._clear_chains()
            self.registry.forget_unused()
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
        if frame is None:
            return self.describe((lock, tkey, self.root, None, -1, extra))
        return self.describe((lock, tkey, self.root, frame.f_code, frame.f_lasti, extra))

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
                [self.describe(e) for e in held[1:]],
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
                self.class_label(hs.graph_key(tkey)),
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
                self.class_label(hs.graph_key(tkey)),
                hs.frame_site(frame),
                waited,
                holders,
            )

        self._deliver(build)


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
    me = _thread.get_ident()
    for ident in list(tracker._threads):
        if ident != me:  # threads that do not exist in the child
            lockstats.merge(tracker._retired_stats, tracker._threads.pop(ident).stats)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )
