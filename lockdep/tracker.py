"""The lock tracker: held stacks, the chain cache, and the checks made before a lock is taken.

This is Ceph's ``lockdep_will_lock`` / ``lockdep_locked`` / ``lockdep_will_unlock``
for Python. There is one tracker per process (``LOCKDEP``); it owns the class
registry, the dependency graph, the chain cache, per-thread state and the
configuration, and ``reset()`` returns all of it to the start.

Held stacks. Each thread has a list of entries, bottom first; the bottom is a
sentinel so that ``held[-1]`` always exists. An entry is a tuple
``(lock, tkey, chain, frame, lasti, extra)``:

* ``tkey``: ``((class_id * 8 + subclass) << 2) | flags`` with ``TRY`` and ``READ``
  flags; ``tkey >> 2`` is the node of the dependency graph;
* ``chain``: the chain-cache node for the stack up to and including this entry;
* ``frame``, ``lasti``: the acquisition site: the acquiring frame and its
  instruction offset, turned into file:line only when a report needs it
  (computing a line number on every acquisition would cost more than the rest
  of the fast path). The entry keeps the frame alive while the lock is held,
  which it normally is anyway;
* ``extra``: None, or the backtrace, acquisition time and re-entry flag when
  backtraces, statistics or recursion need them.

Chain cache. A trie of dicts keyed by ``tkey``: the node reached from the root
through the keys of a held stack stands for that stack, and a child under key k
exists only once taking k on top of that stack was validated (every edge from a
held class to k exists and none closes a cycle). A lock whose next node is
already present is taken with no graph work and no shared lock: that is the
fast path the lock types inline. Anything else comes here.

Concurrency. One raw ``_thread`` lock (never itself tracked) guards the graph,
the registry and the cache's mutations; reads of the cache are plain dict reads.
No report, log call or user callback runs while it is held, and a thread that
is inside lockdep treats its own further acquisitions as untracked, so lockdep
cannot deadlock on itself, even when logging uses tracked locks. Work that may
arrive from a finalizer (a collected lock unregistering, a thread exiting) is
queued and run when the lock is next free.
"""

from __future__ import annotations

import _thread
import os
import sys
import threading
import traceback
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from itertools import pairwise
from time import monotonic, perf_counter
from types import FrameType
from typing import Any, Final

from . import report
from .graph import DependencyGraph
from .registry import ClassRegistry
from .report import (
    ChainLink,
    EdgeInfo,
    HeldLock,
    Site,
    Violation,
    label,
    safe_format,
    site_of,
)

TRY = 1
READ = 2
SUBCLASSES = 8
SUBCLASS_STRIDE = 4  # tkey step between subclasses
CLASS_STRIDE = SUBCLASSES * SUBCLASS_STRIDE  # tkey step between classes

DEFAULT_MAX_CLASSES = 131072
STACK_LIMIT = 32
MAX_KEPT_VIOLATIONS = 1000

# Entry fields.
LOCK: Final = 0
TKEY: Final = 1
CHAIN: Final = 2
FRAME: Final = 3
LASTI: Final = 4
EXTRA: Final = 5

RESPONSES = ("raise", "log", "abort")

Entry = tuple[Any, int, dict[Any, Any], "FrameType | None", int, "_Extra | None"]
RawAcquire = Callable[[bool, float], bool]


class _Extra:
    """What an entry keeps beyond the fast path's fields."""

    __slots__ = ("reentry", "since", "stack")

    def __init__(self, stack: tuple[str, ...] | None, since: float, reentry: bool) -> None:
        self.stack = stack
        self.since = since
        self.reentry = reentry


class ThreadState:
    """Per-thread state that outlives a single call: the held stack and statistics."""

    __slots__ = ("busy", "held", "ident", "stats", "token_ref")

    def __init__(self, ident: int, held: list[Entry]) -> None:
        self.ident = ident
        self.held = held
        self.busy = False  # inside lockdep: further acquisitions are untracked
        # class id -> [acquisitions, contentions, wait total, wait max, hold total, hold max]
        self.stats: dict[int, list[float]] = {}
        self.token_ref: weakref.ref[_Token] | None = None


class _Token:
    """Lives in a thread's local storage; its death tells the tracker the thread is gone."""

    __slots__ = ("__weakref__",)


class _Local(threading.local):
    held: list[Entry]
    state: ThreadState
    token: _Token

    def __init__(self) -> None:
        LOCKDEP._attach_thread(self)


def _new_stats() -> list[float]:
    return [0, 0, 0.0, 0.0, 0.0, 0.0]


def _capture(frame: FrameType | None) -> tuple[str, ...]:
    return tuple(traceback.format_stack(frame, limit=STACK_LIMIT)) if frame is not None else ()


def _thread_names() -> dict[int | None, str]:
    return {t.ident: t.name for t in threading.enumerate()}


class Lockdep:
    """The process's lock tracker. Use the module functions of ``lockdep``, not this class."""

    def __init__(self) -> None:
        self._mutex = _thread.allocate_lock()
        self.root: dict[int, Any] = {}
        self.sentinel: Entry = (None, -1, self.root, None, -1, None)
        self.graph = DependencyGraph()
        self.registry = ClassRegistry(DEFAULT_MAX_CLASSES, self._forget_class)
        # configuration
        self.enabled = True
        self.on_violation: str | Callable[[Violation], object] = "raise"
        self.backtrace = False
        self.stats_enabled = False
        self.wait_timeout: float | None = None
        # state
        self.mode = "fast"  # "fast", "checked" (stats, backtraces, wait timeouts) or "plain"
        self.exhausted = False
        self._mode_listeners: list[Callable[[str], None]] = []
        self._threads: dict[int, ThreadState] = {}
        self._retired_stats: dict[int, list[float]] = {}
        self._pending: list[Callable[[], None]] = []
        self.checks = 0
        self.cache_hits = 0
        self.violation_counts = dict.fromkeys(report.KINDS, 0)
        self._reported: set[tuple[str, frozenset[str]]] = set()
        self.violations: deque[Violation] = deque(maxlen=MAX_KEPT_VIOLATIONS)
        self.local: _Local  # set right after construction (its __init__ needs LOCKDEP)

    # --- threads --------------------------------------------------------------

    def _attach_thread(self, local: _Local) -> None:
        held: list[Entry] = [self.sentinel]
        state = ThreadState(_thread.get_ident(), held)
        token = _Token()
        state.token_ref = weakref.ref(token, lambda _ref: self._defer(lambda: self._retire(state)))
        local.held = held
        local.state = state
        local.token = token
        self._threads[state.ident] = state

    def _retire(self, state: ThreadState) -> None:
        if self._threads.get(state.ident) is state:
            del self._threads[state.ident]
        _merge_stats(self._retired_stats, state.stats)

    def thread_state(self, ident: int) -> ThreadState | None:
        state = self._threads.get(ident)
        if state is None and ident == _thread.get_ident():
            state = self.local.state
        return state

    def states(self) -> list[ThreadState]:
        return list(self._threads.values())

    # --- deferred work (from finalizers) --------------------------------------

    def _defer(self, action: Callable[[], None]) -> None:
        self._pending.append(action)
        if self._mutex.acquire(False):
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
                report._log_safely(
                    "lockdep: internal error in deferred work:\n" + traceback.format_exc()
                )

    # --- configuration --------------------------------------------------------

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
        if self.mode == "plain":
            # Entries pushed before the plain period may have been released
            # untracked since: forget them; locks still held count as untracked.
            for state in self.states():
                del state.held[1:]
        self.mode = mode
        for listener in self._mode_listeners:
            listener(mode)

    @property
    def tracking(self) -> bool:
        return self.mode != "plain"

    # --- registry ---------------------------------------------------------------

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
            report._log_safely(report.format_limit(limit, count, name))
            self.update_mode()
        return -1

    def unregister(self, class_id: int) -> None:
        with self._mutex:
            self._run_pending()
            self.registry.unregister(class_id)

    def unregister_later(self, class_id: int) -> None:
        """unregister() for finalizers: never blocks."""
        self._defer(lambda: self.registry.unregister(class_id))

    def _forget_class(self, class_id: int) -> None:
        # Called by the registry under the mutex when an id is about to be reused.
        base = class_id * SUBCLASSES
        for key in range(base, base + SUBCLASSES):
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

    def class_label(self, key: int) -> str:
        """The label of a graph node (class_id * 8 + subclass)."""
        try:
            name = self.registry.name(key // SUBCLASSES)
        except KeyError:
            name = f"<forgotten class {key // SUBCLASSES}>"
        return label(name, key % SUBCLASSES)

    # --- acquisition (the checked path) ---------------------------------------

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
    ) -> bool:
        """Check and take a tracked lock; returns what raw_acquire returned.

        ``raw_acquire(blocking, timeout)`` takes the underlying lock. tkey None
        means an untracked lock. Violations are delivered before blocking; with
        ``on_violation="raise"`` the exception propagates and nothing is taken.
        """
        local = self.local
        state = local.state
        if tkey is None or self.mode == "plain" or state.busy:
            return raw_acquire(blocking, timeout)
        held = local.held
        stack = _capture(frame) if backtrace or self.backtrace else None
        chain = held[-1][CHAIN]
        reentry = False
        nxt: dict[Any, Any] | None
        if not blocking:
            # A trylock cannot deadlock: no check and no edge into it.
            tkey |= TRY
            if recursive and _holds(held, lock):
                reentry, nxt = True, chain
            else:
                nxt = chain.get(tkey)
                if nxt is None:
                    nxt = chain.setdefault(tkey, {})
        else:
            nxt = chain.get(tkey)
            if nxt is None:
                nxt, reentry = self._validate(lock, tkey, held, frame, stack, recursive)
            elif self.stats_enabled:
                self.cache_hits += 1
        if self.stats_enabled:
            got = self._acquire_counted(lock, raw_acquire, tkey, blocking, timeout, frame, state)
        elif blocking and self.wait_timeout is not None:
            got = self._acquire_watched(lock, raw_acquire, tkey, timeout, frame)
        else:
            got = raw_acquire(blocking, timeout)
        if got:
            extra = None
            if stack is not None or reentry or self.stats_enabled:
                extra = _Extra(stack, perf_counter(), reentry)
            held.append((lock, tkey, nxt, frame, frame.f_lasti if frame else -1, extra))
        return got

    def _acquire_counted(
        self,
        lock: object,
        raw_acquire: RawAcquire,
        tkey: int,
        blocking: bool,
        timeout: float,
        frame: FrameType | None,
        state: ThreadState,
    ) -> bool:
        record = state.stats.get(tkey // CLASS_STRIDE)
        if record is None:
            record = state.stats[tkey // CLASS_STRIDE] = _new_stats()
        if raw_acquire(False, -1):
            record[0] += 1
            return True
        if not blocking:
            return False
        start = perf_counter()
        if self.wait_timeout is not None:
            got = self._acquire_watched(lock, raw_acquire, tkey, timeout, frame)
        else:
            got = raw_acquire(True, timeout)
        waited = perf_counter() - start
        record[1] += 1
        record[2] += waited
        if waited > record[3]:
            record[3] = waited
        if got:
            record[0] += 1
        return got

    def _acquire_watched(
        self,
        lock: object,
        raw_acquire: RawAcquire,
        tkey: int,
        timeout: float,
        frame: FrameType | None,
    ) -> bool:
        limit = self.wait_timeout
        if limit is None or 0 <= timeout <= limit:
            return raw_acquire(True, timeout)
        start = monotonic()
        if raw_acquire(True, limit):
            return True
        self._report_wait(lock, tkey, frame, monotonic() - start)
        remaining = -1.0 if timeout < 0 else max(0.0, timeout - (monotonic() - start))
        return raw_acquire(True, remaining)

    def _validate(
        self,
        lock: object,
        tkey: int,
        held: list[Entry],
        frame: FrameType | None,
        stack: tuple[str, ...] | None,
        recursive: bool,
    ) -> tuple[dict[int, Any], bool]:
        """The slow path of a blocking acquisition: recursion, then order.

        Returns the chain node to push and whether this is a re-entry of a
        recursive lock by its owner.
        """
        key = tkey >> 2
        state = self.local.state
        for i in range(len(held) - 1, 0, -1):
            entry = held[i]
            if entry[TKEY] >> 2 == key:
                if recursive and entry[LOCK] is lock:
                    return held[-1][CHAIN], True
                self._report_recursive(lock, tkey, frame, stack, held, entry)
                return {}, False  # reported but not raised: go on, uncached
        state.busy = True
        try:
            with self._mutex:
                self._run_pending()
                self.checks += 1
                chain = held[-1][CHAIN]
                cached = chain.get(tkey)
                if cached is not None:
                    return cached, False
                violation = self._add_edges(lock, tkey, held, frame, stack)
                if violation is None:
                    return chain.setdefault(tkey, {}), False
            self._deliver(violation)
        finally:
            state.busy = False
        return {}, False

    def _add_edges(
        self,
        lock: object,
        tkey: int,
        held: list[Entry],
        frame: FrameType | None,
        stack: tuple[str, ...] | None,
    ) -> Violation | None:
        # Under the mutex. An edge from every held class (not only the innermost:
        # an out-of-order release or a trylock leaves no transitive path to rely
        # on). Edges into the new class never change what it reaches, so checking
        # and adding one held class at a time equals checking all first.
        key = tkey >> 2
        graph = self.graph
        thread_name = threading.current_thread().name
        first: Violation | None = None
        to_site: Site | None = None
        done = set()
        for i in range(len(held) - 1, 0, -1):
            entry = held[i]
            source = entry[TKEY] >> 2
            if source in done:
                continue
            done.add(source)
            if graph.has_edge(source, key):
                graph.edge_data(source, key).count += 1
                continue
            if to_site is None:
                to_site = _frame_site(frame)
            extra = entry[EXTRA]
            info = EdgeInfo(
                thread=thread_name,
                from_site=entry_site(entry),
                to_site=to_site,
                from_stack=extra.stack if extra is not None else None,
                to_stack=stack,
            )
            cycle = graph.add_edge(source, key, info)
            if cycle is not None and first is None:
                first = self._order_violation(lock, tkey, frame, stack, held, entry, cycle)
        return first

    # --- release (the checked path) ---------------------------------------------

    def pop_entry(self, lock: object, read: bool = False) -> Entry | None:
        """Remove this thread's most recent entry for lock (any position)."""
        held = self.local.held
        for i in range(len(held) - 1, 0, -1):
            entry = held[i]
            if entry[LOCK] is lock and bool(entry[TKEY] & READ) == read:
                if i == len(held) - 1:
                    held.pop()
                else:
                    _remove_at(held, i)
                extra = entry[EXTRA]
                if extra is not None and self.stats_enabled and not extra.reentry:
                    self._count_hold(entry[TKEY], perf_counter() - extra.since)
                return entry
        return None

    def _count_hold(self, tkey: int, seconds: float) -> None:
        stats = self.local.state.stats
        record = stats.get(tkey // CLASS_STRIDE)
        if record is None:
            record = stats[tkey // CLASS_STRIDE] = _new_stats()
        record[4] += seconds
        if seconds > record[5]:
            record[5] = seconds

    def find_holders(self, lock: object) -> list[tuple[ThreadState, Entry]]:
        """Every other thread's entry for lock."""
        me = _thread.get_ident()
        found = []
        for state in self.states():
            if state.ident == me:
                continue
            for entry in list(state.held):
                if entry[LOCK] is lock:
                    found.append((state, entry))
                    break
        return found

    def remove_from(self, state: ThreadState, lock: object) -> None:
        """Take another thread's entry for lock off its stack (a release on its behalf)."""
        held = state.held
        for i in range(len(held) - 1, 0, -1):
            if held[i][LOCK] is lock:
                try:
                    _remove_at(held, i)
                except IndexError:
                    pass  # that thread changed its stack meanwhile
                return

    # --- queries ----------------------------------------------------------------

    def held_locks(self, ident: int) -> list[HeldLock]:
        state = self.thread_state(ident)
        if state is None:
            return []
        return [self.describe_entry(e) for e in list(state.held)[1:]]

    def describe_entry(self, entry: Entry) -> HeldLock:
        tkey = entry[TKEY]
        extra = entry[EXTRA]
        try:
            name = self.registry.name(tkey // CLASS_STRIDE)
        except KeyError:
            name = "<forgotten>"
        return HeldLock(
            name=name,
            subclass=(tkey >> 2) % SUBCLASSES,
            lock=entry[LOCK],
            mode="read" if tkey & READ else "write",
            trylock=bool(tkey & TRY),
            site=entry_site(entry),
            stack=extra.stack if extra is not None else None,
            reentry=extra.reentry if extra is not None else False,
        )

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
                        "from": self.registry.name(source // SUBCLASSES),
                        "from_subclass": source % SUBCLASSES,
                        "to": self.registry.name(target // SUBCLASSES),
                        "to_subclass": target % SUBCLASSES,
                        **info.as_dict(),
                    }
                )
        return {"classes": classes, "edges": edges}

    def stats_data(self) -> dict[str, Any]:
        with self._mutex:
            self._run_pending()
            merged: dict[int, list[float]] = {}
            _merge_stats(merged, self._retired_stats)
            for state in self.states():
                _merge_stats(merged, dict(state.stats))
            locks = {}
            for cid, record in merged.items():
                try:
                    name = self.registry.name(cid)
                except KeyError:
                    continue
                locks[name] = {
                    "acquisitions": int(record[0]),
                    "contentions": int(record[1]),
                    "wait_seconds_total": record[2],
                    "wait_seconds_max": record[3],
                    "hold_seconds_total": record[4],
                    "hold_seconds_max": record[5],
                }
            return {
                "enabled": self.enabled,
                "mode": self.mode,
                "validating": self.tracking,
                "classes": len(self.registry),
                "max_classes": self.registry.max_classes,
                "edges": self.graph.edge_count(),
                "checks": self.checks,
                "cache_hits": self.cache_hits if self.stats_enabled else None,
                "violations": sum(self.violation_counts.values()),
                "violations_by_kind": dict(self.violation_counts),
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
            self.violation_counts = dict.fromkeys(report.KINDS, 0)
            self._reported.clear()
            self.violations.clear()
            self._retired_stats.clear()
            for state in self.states():
                state.stats.clear()
            exhausted, self.exhausted = self.exhausted, False
        if exhausted:
            self.update_mode()

    # --- violations -------------------------------------------------------------

    def _violation(self, kind: str, classes: Iterable[str]) -> Violation:
        return Violation(
            kind=kind,
            classes=tuple(classes),
            thread_name=threading.current_thread().name,
            thread_id=_thread.get_ident(),
            held=self.held_locks(_thread.get_ident()),
        )

    def _taking(self, lock: object, tkey: int, frame: FrameType | None, stack: Any) -> HeldLock:
        lasti = frame.f_lasti if frame is not None else -1
        return self.describe_entry((lock, tkey, self.root, frame, lasti, _Extra(stack, 0.0, False)))

    def _report_recursive(
        self,
        lock: object,
        tkey: int,
        frame: FrameType | None,
        stack: Any,
        held: list[Entry],
        earlier_entry: Entry,
    ) -> None:
        state = self.local.state
        state.busy = True
        try:
            taking = self._taking(lock, tkey, frame, stack)
            earlier = self.describe_entry(earlier_entry)
            v = self._violation("recursive", [taking.label])
            same = earlier_entry[LOCK] is lock
            v.report = safe_format(v, lambda: report.format_recursive(v, taking, earlier, same))
            self._deliver(v)
        finally:
            state.busy = False

    def _order_violation(
        self,
        lock: object,
        tkey: int,
        frame: FrameType | None,
        stack: Any,
        held: list[Entry],
        holding_entry: Entry,
        cycle: list[int],
    ) -> Violation:
        # Under the mutex: gather the chain's edge data; format later, outside it.
        chain = []
        for source, target in pairwise(cycle):
            info = self.graph.edge_data(source, target)
            chain.append(ChainLink(self.class_label(source), self.class_label(target), info))
        taking = self._taking(lock, tkey, frame, stack)
        holding = self.describe_entry(holding_entry)
        v = self._violation("order", [self.class_label(k) for k in cycle])
        v.chain = chain
        v.report = safe_format(v, lambda: report.format_order(v, taking, holding))
        return v

    def report_unlock(self, lock: object, tkey: int, frame: FrameType | None) -> None:
        """An owner-checked lock released by a thread that does not hold it."""
        state = self.local.state
        state.busy = True
        try:
            names = _thread_names()
            holders = self.find_holders(lock)
            holder = None
            if holders:
                other, entry = holders[0]
                where = entry_site(entry)
                holder = (
                    f"thread '{names.get(other.ident, '?')}' (ident {other.ident}) since {where}"
                )
            lock_label = self.class_label(tkey >> 2)
            v = self._violation("unlock", [lock_label])
            site = _frame_site(frame)
            v.report = safe_format(v, lambda: report.format_unlock(v, lock_label, site, holder))
            self._deliver(v)
        finally:
            state.busy = False

    def _report_wait(self, lock: object, tkey: int, frame: FrameType | None, waited: float) -> None:
        state = self.local.state
        state.busy = True
        try:
            names = _thread_names()
            frames = sys._current_frames()
            holders = []
            for other, entry in self.find_holders(lock):
                stack = traceback.format_stack(frames[other.ident]) if other.ident in frames else []
                name = f"thread '{names.get(other.ident, '?')}' (ident {other.ident})"
                holders.append((name, self.describe_entry(entry), stack))
            lock_label = self.class_label(tkey >> 2)
            v = self._violation("wait_timeout", [lock_label])
            site = _frame_site(frame)
            v.report = safe_format(
                v, lambda: report.format_wait_timeout(v, lock_label, site, waited, holders)
            )
            self._deliver(v)
        finally:
            state.busy = False

    def _deliver(self, v: Violation) -> None:
        state = self.local.state
        busy, state.busy = state.busy, True
        try:
            response = self.on_violation
            with self._mutex:
                self.violation_counts[v.kind] += 1
                first = v.key not in self._reported
                if first:
                    self._reported.add(v.key)
                    self.violations.append(v)
            if response == "log" and not first:
                return
            report.deliver(v, response)
        finally:
            state.busy = busy


def _frame_site(frame: FrameType | None) -> Site:
    if frame is None:
        return report.UNKNOWN_SITE
    return site_of(frame.f_code, frame.f_lasti)


def entry_site(entry: Entry) -> Site:
    frame = entry[FRAME]
    return site_of(frame.f_code, entry[LASTI]) if frame is not None else report.UNKNOWN_SITE


def _holds(held: list[Entry], lock: object) -> bool:
    return any(entry[LOCK] is lock for entry in held)


def _remove_at(held: list[Entry], index: int) -> None:
    """Remove held[index] and rebuild the chain nodes of the entries above it."""
    del held[index]
    chain = held[index - 1][CHAIN]
    for i in range(index, len(held)):
        entry = held[i]
        extra = entry[EXTRA]
        if extra is None or not extra.reentry:
            # A transition not validated for the shorter stack gets a fresh,
            # detached node: a cold cache is always safe.
            nxt = chain.get(entry[TKEY])
            chain = nxt if nxt is not None else {}
        held[i] = (entry[LOCK], entry[TKEY], chain, entry[FRAME], entry[LASTI], extra)


def _merge_stats(into: dict[int, list[float]], source: dict[int, list[float]]) -> None:
    for cid, record in source.items():
        total = into.get(cid)
        if total is None:
            into[cid] = list(record)
            continue
        total[0] += record[0]
        total[1] += record[1]
        total[2] += record[2]
        total[3] = max(total[3], record[3])
        total[4] += record[4]
        total[5] = max(total[5], record[5])


LOCKDEP = Lockdep()
LOCKDEP.local = _Local()


def _after_fork_in_child() -> None:
    # The mutex may have been held by a thread that does not exist in the child.
    tracker = LOCKDEP
    tracker._mutex = _thread.allocate_lock()
    me = _thread.get_ident()
    for ident in list(tracker._threads):
        if ident != me:
            state = tracker._threads.pop(ident)
            _merge_stats(tracker._retired_stats, state.stats)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
