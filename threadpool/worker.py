"""A pool's worker thread and its loop (Ceph's ``ThreadPool::worker``, SPEC 4.1).

Each ``Worker`` is one thread of a ``ThreadPool``. It names its OS thread,
applies the pool's CPU affinity and I/O priority, registers with the pool's
heartbeat map as ``"<pool> thread <n>"``, then loops until the pool stops:

* with the pool lock held: join retired workers; retire if the pool has more
  workers than its target; unless paused, try the queues round-robin starting
  after the queue served last, and dequeue one unit;
* without the lock: reset the heartbeat with the queue's grace and suicide
  grace, run the process step (an exception is logged with its traceback and
  the worker goes on);
* with the lock: run the finish step (given the error), count the unit, wake
  pause and drain waiters;
* with nothing to do: reset the heartbeat to the pool's idle grace with no
  suicide (an idle worker never suicides), and sleep on the worker's own
  condition for at most the pool's ``idle_wait``, listed in ``pool._idle``
  when it sleeps for want of work so that ``queue()`` can wake it.

Taking the pool lock back after a process step is the one contended moment;
``_relock`` explains how it is taken without a lock convoy.

All state is the pool's, read and written under the pool lock (see
``pool.py``); the worker keeps only what is its own: its condition, its
heartbeat handle, and a note of its heartbeat deadline.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from time import monotonic, sleep
from typing import TYPE_CHECKING, Any

import lockdep

from . import _osthread
from .heartbeat import HeartbeatHandle, TPHandle
from .queue_base import INF, NOTHING, BaseWorkQueue

if TYPE_CHECKING:
    from .pool import ThreadPool

logger = logging.getLogger("threadpool")

# Sleeps (seconds) of a worker that found the pool lock taken, before it queues on it.
BACKOFF = (0.00001, 0.00005, 0.0001, 0.0005)


def os_name_for(thread_name: str, index: int) -> str:
    """``thread_name`` plus ``-<index>``, cut so that the whole fits the kernel's 15 bytes."""
    suffix = f"-{index}"
    base = _osthread.os_thread_name(thread_name)[: _osthread.NAME_LIMIT - len(suffix)]
    return base.decode("utf-8", "ignore") + suffix


class Worker:
    """One worker thread of ``pool``; ``index`` is its number in the pool."""

    __slots__ = ("cond", "ident", "index", "name", "os_name", "pool", "thread")

    def __init__(self, pool: ThreadPool, index: int) -> None:
        self.pool = pool
        self.index = index
        self.name = f"{pool.name} thread {index}"
        self.os_name = os_name_for(pool.thread_name, index)
        self.cond = lockdep.Cond(pool._lock)
        self.ident = 0
        self.thread = threading.Thread(target=self._main, name=self.name, daemon=True)

    def __repr__(self) -> str:
        return f"<Worker {self.name!r}>"

    def _main(self) -> None:
        self._setup_os_thread()
        hb_map = self.pool.heartbeat_map
        hb = hb_map.add_worker(self.name) if hb_map is not None else None
        try:
            self._loop(hb)
        finally:
            if hb is not None and hb_map is not None:
                hb_map.remove_worker(hb)

    def _setup_os_thread(self) -> None:
        pool = self.pool
        steps: list[tuple[str, Callable[[], bool]]] = [
            ("thread name", lambda: _osthread.set_thread_name(self.os_name))
        ]
        cpus, ioprio = pool._cpus, pool._ioprio
        if cpus is not None:
            steps.append(("CPU affinity", lambda: _osthread.set_cpu_affinity(cpus)))
        if ioprio is not None:
            steps.append(("I/O priority", lambda: _osthread.set_io_priority(*ioprio)))
        for what, step in steps:
            try:
                step()
            except OSError as exc:
                if what not in pool._os_warned:
                    pool._os_warned.add(what)
                    logger.warning("%s: cannot set the %s of its workers: %s", pool.name, what, exc)

    def _loop(self, hb: HeartbeatHandle | None) -> None:
        # The hot path: pool attributes are read where they may change, the rest is local.
        pool = self.pool
        lock = pool._lock
        hb_map = pool.heartbeat_map
        clock = hb_map.clock if hb_map is not None else monotonic
        handle = TPHandle(hb_map, hb, self.name)
        idle_grace = pool._idle_grace
        hb_deadline = INF  # when the heartbeat as this worker last set it runs out
        ident = self.ident = threading.get_ident()
        unit: Any = NOTHING
        lock.lock()
        pool._owner = ident
        pool._worker_idents.add(ident)
        pool._wait_cond.notify_all()  # wait_for_threads()
        try:
            while not pool._stop:
                if pool._retired:
                    pool._join_retired()
                if len(pool._threads) > pool._num_threads:
                    pool._retire(self)
                    return
                broken = False  # a dequeue raised: sleep rather than spin on it
                if not pool._pause:
                    queues = pool._queues
                    i = pool._last
                    for _ in range(len(queues)):
                        i += 1
                        if i >= len(queues):
                            i = 0
                        q = queues[i]
                        try:
                            unit = q._void_dequeue()
                        except Exception as exc:
                            self._log_failure(q, "dequeue", exc)
                            broken = True
                            continue
                        if unit is not NOTHING:
                            break
                    if unit is not NOTHING:
                        pool._last = i
                        count = len(unit) if q._batch else 1
                        pool._processing += 1
                        q._in_flight += 1
                        pool._owner = 0
                        lock.unlock()

                        now = clock()
                        if hb is not None:
                            if now > hb_deadline:  # came back late: report it (Ceph does)
                                hb_map._check(hb, now, "reset_timeout")  # type: ignore[union-attr]
                            hb._state = (now, q._timeout, q._suicide_timeout)
                            hb_deadline = now + q._first_limit
                        error: BaseException | None = None
                        try:
                            q._void_process(unit, handle)
                        except BaseException as exc:
                            error = exc
                            self._log_failure(q, "process", exc)
                        end = clock()
                        if not lock.try_lock():
                            self._relock()
                        pool._owner = ident

                        try:
                            q._void_process_finish(unit, error)
                        except BaseException as exc:
                            self._log_failure(q, "finish", exc)
                            if error is None:
                                error = exc
                        q._processed += count
                        if error is not None:
                            q._failed += count
                            error = None
                        q._busy_seconds += end - now
                        if q._duration is not None:
                            q._duration.observe(end - now)
                        q._in_flight -= 1
                        pool._processing -= 1
                        unit = NOTHING
                        if (pool._pause or pool._draining) and q._in_flight == 0:
                            pool._wait_cond.notify_all()
                        continue

                # Nothing to do, or paused.
                if hb is not None:
                    now = clock()
                    late = now > hb_deadline
                    if late:  # report it without the pool lock, then look again
                        pool._owner = 0
                        lock.unlock()
                        hb_map._check(hb, now, "reset_timeout")  # type: ignore[union-attr]
                        lock.lock()
                        pool._owner = ident
                    hb._state = (now, idle_grace, 0.0)
                    hb_deadline = now + idle_grace if idle_grace else INF
                    if late:
                        continue
                if pool._pause or not pool._queues or broken:
                    self._sleep(pool._idle_wait)
                    continue
                pool._idle.append(self)
                if pool._any_work():
                    pool._unidle(self)  # queued before we were listed: see pool.py
                    continue
                self._sleep(pool._idle_wait)
                pool._unidle(self)
        except Exception:  # a bug, or a lockdep report: the pool carries on without us
            logger.exception("%s: %s died", pool.name, self.name)
        finally:
            if pool._owner != ident:  # left the loop without the lock
                lock.lock()
                pool._owner = ident
            pool._worker_idents.discard(ident)
            if pool._threads.get(self.index) is self:
                del pool._threads[self.index]
            pool._wait_cond.notify_all()
            pool._owner = 0
            lock.unlock()

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
        lock = self.pool._lock
        for delay in BACKOFF:
            sleep(delay)
            if lock.try_lock():
                return
        lock.lock()

    def _sleep(self, timeout: float) -> None:
        """Wait on this worker's condition (pool lock held; released while waiting)."""
        pool = self.pool
        pool._owner = 0
        self.cond.wait(timeout)
        pool._owner = self.ident

    def _log_failure(self, q: BaseWorkQueue, step: str, exc: BaseException) -> None:
        logger.error(
            "%s: %s step of queue %r raised on %s",
            self.pool.name,
            step,
            q.name,
            self.name,
            exc_info=exc,
        )
