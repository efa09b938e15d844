"""A pool's worker thread and its loop (Ceph's ``ThreadPool::worker``, SPEC 4.1).

Each ``Worker`` is one thread of a ``ThreadPool``. It names its OS thread,
applies the pool's CPU affinity and I/O priority, registers with the pool's
heartbeat map as ``"<pool> thread <n>"``, then loops until the pool stops,
with the pool lock held except where said:

* housekeeping: join retired workers; retire if the pool has more workers
  than its target;
* ``_expire``: unless paused, when ``deadline_hint`` says a queue's timer is
  due, take the expired items off the queues, hand them to the queues'
  ``on_expire`` without the lock and run their finish steps with it;
* ``_pick``: unless paused, try the queues round-robin starting after the
  queue served last, and dequeue one unit;
* ``_run``: without the lock, reset the heartbeat with the queue's grace and
  suicide grace and run the process step (an exception is logged with its
  traceback and the worker goes on); with the lock again, run the finish
  step (given the error), account for the unit with one call to the queue,
  and wake pause and drain waiters;
* ``_idle``: with nothing to do, reset the heartbeat to the pool's idle
  grace with no suicide (an idle worker never suicides), list itself in
  ``idle`` so that ``queue()`` can wake it, look at the queues a last time,
  and sleep on its own condition for at most the pool's ``idle_wait``. In an
  elastic pool, a worker idle for ``idle_timeout`` exits while the pool is
  above its minimum (it sleeps no longer than that timeout to notice).

Taking the pool lock back after a process step is the one contended moment;
``_relock`` explains how it is taken without a lock convoy.

Everything shared lives in the pool's ``PoolState`` (``state.py``, where
each field's locking rule is stated) and in the queues, which the worker
drives through their public protocol (``queue_base``). The worker keeps only
what is its own: its condition, its heartbeat handle, and ``serving``, the
queue whose unit it holds (read under the lock, to count units in flight).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from time import monotonic, sleep
from typing import TYPE_CHECKING, Any

import lockdep

from . import _osthread
from .heartbeat import INF, HeartbeatHandle, TPHandle
from .queue_base import NOTHING

if TYPE_CHECKING:
    from .queue_base import BaseWorkQueue
    from .state import PoolState

logger = logging.getLogger("threadpool")

# Sleeps (seconds) of a worker that found the pool lock taken, before it queues on it.
BACKOFF = (0.00001, 0.00005, 0.0001, 0.0005)


def os_name_for(thread_name: str, index: int) -> str:
    """``thread_name`` plus ``-<index>``, cut so that the whole fits the kernel's 15 bytes."""
    suffix = f"-{index}"
    base = _osthread.os_thread_name(thread_name)[: _osthread.NAME_LIMIT - len(suffix)]
    return base.decode("utf-8", "ignore") + suffix


class Worker:
    """One worker thread of the pool whose state is ``state``; ``index`` is its number."""

    __slots__ = (
        "broken",
        "cond",
        "handle",
        "hb",
        "ident",
        "index",
        "launched",
        "name",
        "os_name",
        "serving",
        "state",
        "thread",
    )

    def __init__(self, state: PoolState, index: int) -> None:
        self.state = state
        self.index = index
        self.name = state.worker_names.format(name=state.name, index=index)
        self.os_name = os_name_for(state.thread_name, index)
        self.cond = lockdep.Cond(state.lock)
        self.ident = 0
        self.hb: HeartbeatHandle | None = None
        self.handle = TPHandle(state.heartbeat_map, None, self.name)
        self.serving: BaseWorkQueue | None = None
        self.broken = False  # a dequeue raised: sleep rather than spin on it
        self.thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self.launched = threading.Event()  # start() has returned: the thread may be joined

    def __repr__(self) -> str:
        return f"<Worker {self.name!r}>"

    def start(self) -> None:
        """Start the thread (once; see PoolState.starting)."""
        try:
            self.thread.start()
        finally:
            self.launched.set()

    def join(self, timeout: float | None = None) -> None:
        """Join the thread, once it has been started (which another thread may be
        doing); at most ``timeout`` seconds in all."""
        end = None if timeout is None else monotonic() + timeout
        self.launched.wait(timeout)
        if self.thread.ident is not None:
            self.thread.join(None if end is None else max(end - monotonic(), 0.0))

    def describe(self) -> str:
        """The worker's name and the queue of the unit it holds, if any (pool lock held)."""
        q = self.serving
        return self.name if q is None else f"{self.name} (queue {q.name!r})"

    def _main(self) -> None:
        self._setup_os_thread()
        hb_map = self.state.heartbeat_map
        if hb_map is not None:
            self.hb = hb_map.add_worker(self.name)
            self.handle = TPHandle(hb_map, self.hb, self.name)
        try:
            self._loop()
        finally:
            if self.hb is not None and hb_map is not None:
                hb_map.remove_worker(self.hb)

    def _setup_os_thread(self) -> None:
        st = self.state
        steps: list[tuple[str, Callable[[], bool]]] = [
            ("thread name", lambda: _osthread.set_thread_name(self.os_name))
        ]
        cpus, ioprio = st.cpus, st.ioprio
        if cpus is not None:
            steps.append(("CPU affinity", lambda: _osthread.set_cpu_affinity(cpus)))
        if ioprio is not None:
            steps.append(("I/O priority", lambda: _osthread.set_io_priority(*ioprio)))
        for what, step in steps:
            try:
                step()
            except OSError as exc:
                st.warn_os_once(what, exc)

    def _loop(self) -> None:
        st = self.state
        lock = st.lock
        ident = self.ident = threading.get_ident()
        lock.lock()
        st.now = monotonic()
        st.worker_started(ident)
        idle_since = monotonic()
        worked = False
        try:
            while not st.stop:
                if st.retired:
                    st.join_retired()
                if len(st.threads) > st.num_threads:
                    st.retire(self)
                    return
                if not st.pause:
                    if st.deadline_hint != INF:
                        now = monotonic()
                        if st.deadline_hint <= now:
                            self._expire(st, now)
                            continue
                    unit = self._pick(st)
                    if unit is not NOTHING:
                        self._run(st, unit)
                        worked = True
                        continue
                if worked:
                    idle_since = monotonic()
                    worked = False
                if self._idle(idle_since):
                    return
        except Exception:  # a bug, or a lockdep report: the pool carries on without us
            logger.exception("%s: %s died", st.name, self.name)
        finally:
            if not lock.is_locked_by_me():  # left the loop without the lock
                lock.lock()
            st.worker_exited(self)
            lock.unlock()
            if st.starting:
                st.start_pending()

    def _pick(self, st: PoolState) -> Any:
        """Dequeue the next unit, round-robin from the queue after the one served last, and
        count it in flight (lock held). NOTHING if no queue has one."""
        queues = st.queues
        n = len(queues)
        i = st.last
        self.broken = False
        for _ in range(n):
            i += 1
            if i >= n:
                i = 0
            q = queues[i]
            try:
                unit = q.dequeue_unit()
            except Exception as exc:
                self._log_failure(q, "dequeue", exc)
                self.broken = True
                continue
            if unit is not NOTHING:
                st.last = i
                st.processing += 1
                self.serving = q
                return unit
        return NOTHING

    def _expire(self, st: PoolState, now: float) -> None:
        """The expiry step (lock held): for each queue with items whose deadline passed,
        hand them over without the lock and finish them with it, counted in flight."""
        st.deadline_hint = INF  # before looking: a lowering meanwhile is kept (state.py)
        st.now = now
        for q in st.queues:
            try:
                items = q.take_expired(now)
            except Exception as exc:
                self._log_failure(q, "expiry", exc)
                continue
            if not items:
                continue
            st.processing += 1
            self.serving = q
            st.lock.unlock()
            try:
                if self.hb is not None:
                    self.hb.reset_with(st.clock(), q.limits)
                q.hand_expired(items)
            finally:
                if not st.lock.try_lock():
                    self._relock()
                st.now = monotonic()
            try:
                q.finish_expired(items)
            except Exception as exc:
                self._log_failure(q, "expired finish", exc)
            self.serving = None
            st.processing -= 1
            st.unit_done(q)
        due = st.next_deadline(monotonic())
        if due < st.deadline_hint:
            st.deadline_hint = due

    def _run(self, st: PoolState, unit: Any) -> None:
        """Process ``unit`` without the lock, then finish and account for it with the lock."""
        q: BaseWorkQueue = self.serving  # type: ignore[assignment]  # set by _pick
        lock = st.lock
        clock = st.clock
        lock.unlock()
        if st.starting:  # workers made while we held the lock (PoolState.starting)
            st.start_pending()

        now = clock()
        hb = self.hb
        if hb is not None:
            hb.reset_with(now, q.limits)
        error: BaseException | None = None
        try:
            q.process_unit(unit, self.handle)
        except BaseException as exc:
            error = exc
            self._log_failure(q, "process", exc)
        end = clock()
        if not lock.try_lock():
            self._relock()
        st.now = end if clock is monotonic else monotonic()

        try:
            q.finish_unit(unit, error)
        except BaseException as exc:
            self._log_failure(q, "finish", exc)
            if error is None:
                error = exc
        q.account(unit, error is not None, end - now)
        self.serving = None
        st.processing -= 1
        if st.pause or st.draining:
            st.unit_done(q)

    def _idle(self, since: float) -> bool:
        """Nothing to do, or paused (lock held), since ``since`` (monotonic): sleep until
        woken or ``idle_wait`` passes. Returns True if the worker retired instead (an
        elastic pool's idle exit)."""
        st = self.state
        hb = self.hb
        if hb is not None:
            now = st.clock()
            if hb.is_late(now):  # report it without the pool lock, then look again
                self._unlocked(hb.reset_at, now, st.idle_grace, 0.0)
                return False
            hb.reset_at(now, st.idle_grace, 0.0)
        wait = st.idle_wait
        if st.deadline_hint != INF:  # a timer is due, or will be: look at it then
            left = st.deadline_hint - monotonic()
            if left <= 0 and not st.pause:
                return False
            wait = min(wait, max(left, 0.0) or wait)
        if st.elastic:
            left = since + st.idle_timeout - monotonic()
            if left <= 0:
                if st.idle_exit(self):
                    return True
            else:
                wait = min(wait, left)
        if st.starting:  # workers made while we held the lock (PoolState.starting)
            self._unlocked(st.start_pending)
            return False
        if st.pause or not st.queues or self.broken:
            self._sleep(wait)
            return False
        st.idle.append(self)
        if st.any_work():
            st.unidle(self)  # queued before we were listed: see state.py
            return False
        self._sleep(wait)
        st.unidle(self)
        return False

    def _unlocked(self, fn: Callable[..., object], *args: Any) -> None:
        """fn(*args) with the pool lock dropped for the call."""
        st = self.state
        st.lock.unlock()
        try:
            fn(*args)
        finally:
            st.lock.lock()
            st.now = monotonic()

    def _relock(self) -> None:
        """Take the pool lock after a failed try.

        Under the GIL, a worker that finds the pool lock taken is running
        while the holder is not: the holder waits for the GIL. Queueing on the
        lock in the kernel would hand this worker the lock while the GIL is
        elsewhere, and from then on each release wakes a kernel waiter and
        the workers pay a thread switch per item (a lock convoy, which takes a
        Ceph-style loop down to about 1.5x a ThreadPoolExecutor). Sleeping a
        few microseconds instead hands the GIL to the holder, which releases
        the lock with nobody queued on it; only after about a millisecond of
        this does the worker queue on the lock.
        """
        lock = self.state.lock
        for delay in BACKOFF:
            sleep(delay)
            if lock.try_lock():
                return
        lock.lock()

    def _sleep(self, timeout: float) -> None:
        """Wait on this worker's condition (pool lock held; released while waiting)."""
        st = self.state
        self.cond.wait(timeout)
        st.now = monotonic()

    def _log_failure(self, q: BaseWorkQueue, step: str, exc: BaseException) -> None:
        logger.error(
            "%s: %s step of queue %r raised on %s",
            self.state.name,
            step,
            q.name,
            self.name,
            exc_info=exc,
        )
