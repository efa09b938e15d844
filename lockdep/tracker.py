"""The lock tracker: Ceph's ``lockdep_will_lock`` / ``lockdep_locked`` /
``lockdep_will_unlock`` for Python, as one façade over lockdep's parts.

There is one tracker per process (``LOCKDEP``). It owns the configuration and
the learned state, each part in its own module: the class ``registry``, the
checks and what they learn (``checks``: the chain cache, the orders between
classes and between instances), the threads' held stacks (``threads``,
``held``), statistics (``lockstats``) and the violations seen
(``violations``). It takes a lock through the checks, turns what they find
into violations and delivers them, pushes and pops held entries, and answers
queries (``queries``). ``reset()`` returns the learned state to the start.

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
import os
import threading
from collections.abc import Callable
from time import perf_counter
from types import FrameType

from . import held as hs
from . import lockstats, violations
from .chains import Chain
from .checks import BINARY, INSTANCES, STRICT, Checker, Fact
from .held import CHAIN, EXTRA, LOCK, REENTRY, TKEY, Entry, Extra
from .keys import READ, TRY, class_id, class_of_key, subclass_of_key
from .registry import ClassRegistry
from .threads import Threads, ThreadState
from .values import HeldLock, Violation, label

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

__all__ = ["BINARY", "INSTANCES", "LOCKDEP", "STRICT", "Lockdep", "capture"]

DEFAULT_MAX_CLASSES = 131072
STACK_LIMIT = 32

RawAcquire = Callable[[bool, float], bool]


class _Local(threading.local):
    """A thread's held stack and state (see threads), made on its first use.

    Until ``__init__`` has made them, a finalizer run by the garbage collector in
    this thread (logging's ``_removeHandlerRef`` takes the module lock) finds the
    class's placeholders: a stack whose chain caches nothing, so every lock type
    misses its fast path, and a state marked busy, so the tracker leaves the lock
    untracked. Neither is ever written to.
    """

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
        self.checker = Checker(self._mutex, self._run_pending)
        self.sentinel: Entry = hs.sentinel(self.checker.root)
        self.registry = ClassRegistry(DEFAULT_MAX_CLASSES, self._forget_class)
        self.violations = violations.ViolationLog()
        self.threads = Threads(lambda state: self._defer(lambda: self._retire(state)))
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

    def refresh_methods(self) -> None:
        """Call the mode listeners again, for the same mode (the implementation of the
        fast path changed: see ``fastpath``)."""
        for listener in self._mode_listeners:
            listener(self.mode)

    def update_mode(self) -> None:
        self.checker.count_hits = self.stats_enabled
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
            violations.limit_reached(limit, count, name)
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
        self._defer(lambda: self.checker.instances.remove(number))

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
        self.checker.forget_class(class_id)
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
        self.checker.semaphores.add(class_id(tkey))

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
        mode = self.mode
        if tkey is None or mode == "plain" or local.state.busy:
            return raw_acquire(blocking, timeout)
        held = local.held
        if not blocking:
            tkey |= TRY
        if mode == "fast" and not backtrace:  # what lock types miss their cache for
            node = held[-1][CHAIN]
            key = tkey >> 2
            if key in node.classes:  # the checker's second case, directly
                node, reentry, fact = self.checker.again(
                    lock, tkey, key, held, node, frame, None, local.state, recursive, policy
                )
                if fact is not None:
                    self._report(fact, lock, tkey, held, frame, None)
            else:
                node, reentry = self.will_lock(
                    lock, tkey, held, frame, None, recursive=recursive, policy=policy
                )
            if not raw_acquire(blocking, timeout):
                return False
            lock._lockdep_pos = len(held)  # type: ignore[attr-defined]
            extra = REENTRY if reentry else None
            if frame is None:
                held.append((lock, tkey, node, None, -1, extra))
            else:
                held.append((lock, tkey, node, frame.f_code, frame.f_lasti, extra))
            return True
        state = local.state
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
        """Check an acquisition of tkey on top of held, before blocking, and report
        what is wrong (see ``checks``). Returns the chain node to push with it, and
        whether it re-enters a recursive lock its owner holds."""
        node, reentry, fact = self.checker.will_lock(
            lock, tkey, held, frame, stack, self.local.state, recursive=recursive, policy=policy
        )
        if fact is not None:
            self._report(fact, lock, tkey, held, frame, stack)
        return node, reentry

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
        lock._lockdep_pos = len(held)  # held's hint (see held)
        if frame is None:
            held.append((lock, tkey, node, None, -1, extra))
        else:
            held.append((lock, tkey, node, frame.f_code, frame.f_lasti, extra))

    def _watched(
        self, lock: object, raw_acquire: RawAcquire, tkey: int, frame: FrameType | None
    ) -> RawAcquire:
        """raw_acquire, reporting a blocking wait longer than wait_timeout (then waiting on)."""
        if self.wait_timeout is None:
            return raw_acquire
        return lockstats.watched(
            raw_acquire,
            self.wait_timeout,
            lambda waited: self._report_wait(lock, tkey, frame, waited),
        )

    # --- release --------------------------------------------------------------------

    def pop_entry(self, lock: object, read: bool = False) -> Entry | None:
        """Take this thread's most recent entry for lock off its stack (any position)."""
        held = self.local.held
        index = getattr(lock, "_lockdep_pos", 0)  # hs.find's hint, inline
        if not (
            0 < index < len(held)
            and held[index][LOCK] is lock
            and bool(held[index][TKEY] & READ) == read
        ):
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
        # queries is imported where the graph or counters are asked for (lockdep.graph(),
        # lockdep.stats()): a program that never asks does not pay for it at start-up.
        from . import queries

        with self._mutex:
            self._run_pending()
            return queries.graph(self.registry, self.checker, self.class_label)

    def stats_data(self) -> dict[str, Any]:
        from . import queries

        with self._mutex:
            self._run_pending()
            merged: dict[int, lockstats.Record] = {}
            lockstats.merge(merged, self._retired_stats)
            for state in self.states():
                lockstats.merge(merged, state.stats)
            return {
                "enabled": self.enabled,
                "mode": self.mode,
                "validating": self.tracking,
                **queries.counts(self.registry, self.checker, merged, stats=self.stats_enabled),
                "violations": self.violations.total(),
                "violations_by_kind": dict(self.violations.counts),
                "threads": len(self.threads),
            }

    def reset(self) -> None:
        with self._mutex:
            self._run_pending()
            self.checker.clear()
            self.registry.forget_unused()
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
        return self.describe((lock, tkey, self.checker.root, code, lasti, extra))

    def _deliver(self, build: Callable[[], Violation]) -> None:
        """Build and deliver a violation with this thread marked as inside lockdep."""
        state = self.local.state
        busy, state.busy = state.busy, True
        try:
            self.violations.deliver(build(), self.on_violation)
        finally:
            state.busy = busy

    def _report(
        self,
        fact: Fact,
        lock: object,
        tkey: int,
        held: list[Entry],
        frame: FrameType | None,
        stack: tuple[str, ...] | None,
    ) -> None:
        """Turn what the checks found into a violation, and deliver it."""
        taking = self._taking(lock, tkey, frame, stack)
        self._deliver(lambda: violations.from_fact(fact, self, self._held(held), taking, lock))

    def report_unlock(self, lock: object, tkey: int, frame: FrameType | None) -> None:
        """An owner-checked lock released by a thread that does not hold it."""
        self._deliver(
            lambda: violations.unlock(
                self.held_locks(_thread.get_ident()),
                self.class_label(tkey >> 2),
                hs.frame_site(frame),
                violations.holders(self, self.find_holders(lock))[:1],
            )
        )

    def _report_wait(self, lock: object, tkey: int, frame: FrameType | None, waited: float) -> None:
        self._deliver(
            lambda: violations.wait_timeout(
                self.held_locks(_thread.get_ident()),
                self.class_label(tkey >> 2),
                hs.frame_site(frame),
                waited,
                violations.holders(self, self.find_holders(lock), stacks=True),
            )
        )


LOCKDEP = Lockdep()
_Local.held = [hs.sentinel(Chain())]  # the placeholders (see _Local)
_Local.state = ThreadState(0, _Local.held)
_Local.state.busy = True
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
