"""``ThreadPool``: worker threads serving several work queues (Ceph's ``ThreadPool``).

Control. ``start()``; ``stop(clear_after=True)`` stops and joins the workers
(each finishes the unit in hand) and, with ``clear_after``, removes the
items still queued and returns them as ``{queue name: [items]}``, logging
their count; ``start()`` may follow. ``pause()`` stops new work and waits for
the units in flight; ``pause_new()`` only stops new work; each counts up and
is undone by one ``unpause()``. ``drain(queue=None)`` waits until the queue
(or every queue) is empty with nothing of it in flight, and raises
RuntimeError instead of waiting forever when nothing could ever process the
queued work (paused, stopped, or no threads). ``set_num_threads(n)`` grows at
once and shrinks lazily: an extra worker retires at the top of its loop.
``add_work_queue`` / ``remove_work_queue`` work while running. The methods
that wait (``pause``, ``drain``, ``stop``) raise RuntimeError when called
from one of the pool's own workers, which they would wait for; the others
may be called from anywhere, finish steps included.

The workers and their loop are in ``worker.py``.

The hand-off. Queueing to a ready-made queue takes no lock: it appends to a
deque (atomic under the GIL; workers remove items only with the pool lock
held) and looks at ``_idle``, the workers asleep for want of work, taking the
pool lock only to wake one of those. A worker lists itself in ``_idle`` and
only then looks at the queues a last time before sleeping, so an item is
never left behind by a sleeping pool. Workers take the pool lock back after
each unit without queueing on it in the kernel (``Worker._relock``), which is
what keeps four workers from convoying on it.

The pool's lock is a ``lockdep.Mutex`` named ``ThreadPool::<name>`` and its
conditions are ``lockdep.Cond``\\ s, so lockdep validates the pool's own
locking along with the user's.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from time import monotonic
from typing import Any

import lockdep

from . import _osthread
from .heartbeat import HeartbeatMap, check_seconds
from .queue_base import BaseWorkQueue, check_name
from .worker import Worker

logger = logging.getLogger("threadpool")


def _check_threads(n: object, keeps: str = "") -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"num_threads must be an int >= 0, got {n!r}{keeps}")
    if n < 0:
        raise ValueError(f"num_threads must be an int >= 0, got {n!r}{keeps}")
    return n


def _check_cpus(cpus: object) -> frozenset[int] | None:
    if cpus is None:
        return None
    msg = f"cpu_affinity must be a non-empty iterable of CPU numbers (ints >= 0), got {cpus!r}"
    if isinstance(cpus, (str, bytes)) or not isinstance(cpus, Iterable):
        raise TypeError(msg)
    out = frozenset(cpus)
    if not out or any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in out):
        raise ValueError(msg)
    return out


def _check_ioprio(ioprio: object) -> tuple[str, int] | None:
    if ioprio is None:
        return None
    classes = ", ".join(map(repr, _osthread.IOPRIO_CLASSES))
    msg = f"ioprio must be (class, level) with class one of {classes} and level 0..7"
    if not isinstance(ioprio, tuple) or len(ioprio) != 2:
        raise TypeError(f"{msg}, got {ioprio!r}")
    ioclass, level = ioprio
    if ioclass not in _osthread.IOPRIO_CLASSES or isinstance(level, bool):
        raise ValueError(f"{msg}, got {ioprio!r}")
    if not isinstance(level, int) or not 0 <= level <= 7:
        raise ValueError(f"{msg}, got {ioprio!r}")
    return ioclass, level


class ThreadPool:
    """Worker threads round-robin over work queues; see the module docstring.

    ``ThreadPool(name, num_threads, thread_name=None, heartbeat_map=None, *,
    cpu_affinity=None, ioprio=None, idle_grace=60.0, idle_wait=2.0)``.
    Workers are named ``"<name> thread <n>"`` (thread names and heartbeat
    workers); the OS thread is named ``thread_name`` (default ``name``) plus
    ``-<n>``, cut to 15 bytes. ``cpu_affinity`` (CPU numbers) and ``ioprio``
    (``("best-effort", 4)``, say) apply to every worker where the OS offers
    them. All methods are thread-safe.
    """

    def __init__(
        self,
        name: str,
        num_threads: int,
        thread_name: str | None = None,
        heartbeat_map: HeartbeatMap | None = None,
        *,
        cpu_affinity: Iterable[int] | None = None,
        ioprio: tuple[str, int] | None = None,
        idle_grace: float = 60.0,
        idle_wait: float = 2.0,
    ) -> None:
        self._name = check_name("ThreadPool", name)
        self._num_threads = _check_threads(num_threads)
        if thread_name is not None:
            check_name("thread", thread_name)
        self._thread_name = thread_name or name
        if heartbeat_map is not None and not isinstance(heartbeat_map, HeartbeatMap):
            raise TypeError(f"heartbeat_map must be a HeartbeatMap or None, got {heartbeat_map!r}")
        self._heartbeat_map = heartbeat_map
        self._cpus = _check_cpus(cpu_affinity)
        self._ioprio = _check_ioprio(ioprio)
        self._idle_grace = check_seconds("idle_grace", idle_grace)
        self._idle_wait = check_seconds("idle_wait", idle_wait)
        if self._idle_wait == 0:
            raise ValueError("idle_wait must be a number of seconds > 0, got 0")

        self._lock = lockdep.Mutex(f"ThreadPool::{name}")
        self._wait_cond = lockdep.Cond(self._lock)  # pause, drain, thread-count waiters
        self._queues: list[BaseWorkQueue] = []  # replaced, never mutated: safe to read unlocked
        self._last = -1  # index of the queue served last
        self._threads: dict[int, Worker] = {}  # live workers by index
        self._retired: list[Worker] = []  # retired workers, to be joined
        self._worker_idents: set[int] = set()
        self._idle: deque[Worker] = deque()  # asleep for want of work; queue() wakes these
        self._owner = 0  # ident of the worker holding the lock (0: none, or not a worker)
        self._processing = 0
        self._pause = 0
        self._draining = 0
        self._stop = False
        self._running = False
        self._os_warned: set[str] = set()

    # --- identity -----------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def thread_name(self) -> str:
        return self._thread_name

    @property
    def heartbeat_map(self) -> HeartbeatMap | None:
        return self._heartbeat_map

    @property
    def num_threads(self) -> int:
        """The target number of workers (set_num_threads)."""
        return self._num_threads

    def get_num_threads(self) -> int:
        """Ceph's name for ``num_threads``."""
        return self._num_threads

    @property
    def running(self) -> bool:
        return self._running

    @property
    def work_queues(self) -> list[BaseWorkQueue]:
        return list(self._queues)

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        return f"<ThreadPool {self._name!r} {state}, {len(self._threads)} threads>"

    # --- queues -------------------------------------------------------------------

    def add_work_queue(self, queue: BaseWorkQueue) -> None:
        """Attach a queue (while running too). ValueError if it is attached anywhere
        already or another attached queue has its name."""
        if not isinstance(queue, BaseWorkQueue):
            raise TypeError(f"add_work_queue() needs a work queue, got {queue!r}")
        with self._locked():
            if queue._pool is not None:
                where = "this pool" if queue._pool is self else repr(queue._pool)
                raise ValueError(f"{queue!r} is already attached to {where}")
            if any(q.name == queue.name for q in self._queues):
                raise ValueError(f"pool {self._name!r} already has a queue named {queue.name!r}")
            queue._pool = self
            self._queues = [*self._queues, queue]
            self._wake_all_locked()

    def remove_work_queue(self, queue: BaseWorkQueue) -> None:
        """Detach a queue (while running too). Its queued items stay in it; units in
        flight still finish. RuntimeError for a PointerWQ with items processing."""
        with self._locked():
            if queue not in self._queues:
                raise ValueError(f"{queue!r} is not attached to pool {self._name!r}")
            if queue._busy() and queue._busy_blocks_removal:
                raise RuntimeError(
                    f"cannot remove {queue!r} from pool {self._name!r} while its items process"
                )
            self._queues = [q for q in self._queues if q is not queue]
            queue._pool = None
            self._wait_cond.notify_all()

    # --- start and stop -----------------------------------------------------------

    def start(self) -> None:
        """Start the workers. RuntimeError if the pool is running."""
        with self._lock:
            if self._running:
                raise RuntimeError(f"pool {self._name!r} is already running")
            self._stop = False
            self._running = True
            self._start_threads_locked()
        logger.info("%s: started with %d threads", self._name, self._num_threads)

    def stop(self, clear_after: bool = True) -> dict[str, list[Any]]:
        """Stop the workers and join them; each finishes the unit it holds first.

        With ``clear_after``, the items still queued are removed and returned as
        ``{queue name: [items]}`` (queues with none are left out) and their count
        is logged; without it they stay queued for the next ``start()``.
        """
        if not isinstance(clear_after, bool):
            raise TypeError(f"clear_after must be True or False, got {clear_after!r}")
        self._not_from_worker("stop()")
        with self._lock:
            self._stop = True
            self._wake_all_locked()
            self._wait_cond.notify_all()
            workers = [*self._threads.values(), *self._retired]
            self._retired = []
        for worker in workers:
            worker.thread.join()
        cleared: dict[str, list[Any]] = {}
        with self._lock:
            self._running = False
            self._idle.clear()
            if clear_after:
                for q in self._queues:
                    items = q._void_clear()
                    if items:
                        cleared[q.name] = items
        if cleared:
            logger.warning(
                "%s: stopped; %d unprocessed items cleared and handed back (%s)",
                self._name,
                sum(map(len, cleared.values())),
                ", ".join(f"{name}: {len(items)}" for name, items in cleared.items()),
            )
        else:
            logger.info("%s: stopped", self._name)
        return cleared

    # --- pause and drain ----------------------------------------------------------

    def pause(self) -> None:
        """Stop handing out new work and wait until no unit is in flight (nests)."""
        self._not_from_worker("pause()")
        with self._lock:
            self._pause += 1
            self._wait_cond.notify_all()
            while self._processing:
                self._wait_cond.wait()

    def pause_new(self) -> None:
        """Stop handing out new work, without waiting (nests with pause)."""
        with self._locked():
            self._pause += 1
            self._wait_cond.notify_all()

    def unpause(self) -> None:
        """Undo one pause() or pause_new(). RuntimeError if the pool is not paused."""
        with self._locked():
            if self._pause == 0:
                raise RuntimeError(f"unpause() of pool {self._name!r}, which is not paused")
            self._pause -= 1
            if self._pause == 0:
                self._wake_all_locked()

    @property
    def paused(self) -> bool:
        return self._pause > 0

    def drain(self, queue: BaseWorkQueue | None = None, timeout: float | None = None) -> bool:
        """Wait until ``queue`` (default: every queue) is empty and none of its work is
        in flight. Returns False if ``timeout`` seconds passed first.

        RuntimeError, rather than waiting forever, when work is queued that
        nothing will process: the pool is paused, not running, or has no threads.
        """
        self._not_from_worker("drain()")
        if queue is not None and not isinstance(queue, BaseWorkQueue):
            raise TypeError(f"drain() takes a work queue or None, got {queue!r}")
        if timeout is not None:
            timeout = check_seconds("timeout", timeout)
        end = None if timeout is None else monotonic() + timeout
        with self._lock:
            if queue is not None and queue._pool is not self:
                raise ValueError(f"{queue!r} is not attached to pool {self._name!r}")
            self._draining += 1
            try:
                while True:
                    if queue is None:
                        queued = any(q._has_work() for q in self._queues)
                        busy = self._processing > 0 or any(q._busy() for q in self._queues)
                    else:
                        queued = queue._has_work()
                        busy = queue._busy()
                    if not queued and not busy:
                        return True
                    if queued:
                        self._check_can_progress(queue)
                    if end is None:
                        self._wait_cond.wait(self._idle_wait)
                    else:
                        remaining = end - monotonic()
                        if remaining <= 0:
                            return False
                        self._wait_cond.wait(min(remaining, self._idle_wait))
            finally:
                self._draining -= 1

    def _check_can_progress(self, queue: BaseWorkQueue | None) -> None:
        what = f"queue {queue.name!r}" if queue is not None else "the queues"
        why = None
        if self._pause:
            why = f"the pool is paused ({self._pause} pause(s) to undo with unpause())"
        elif not self._running or self._stop:
            why = "the pool is not running (start() it)"
        elif self._num_threads == 0:
            why = "the pool has no threads (set_num_threads(n) with n > 0)"
        if why is not None:
            raise RuntimeError(
                f"drain() of pool {self._name!r} would never end: work is queued in {what} "
                f"but {why}"
            )

    # --- size ------------------------------------------------------------------------

    def set_num_threads(self, n: int) -> None:
        """Set the target number of workers (n >= 0): grows at once, shrinks lazily.

        TypeError/ValueError for anything but an int >= 0; the size is then unchanged.
        """
        n = _check_threads(n, f"; pool {self._name!r} keeps {self._num_threads} threads")
        with self._locked():
            old, self._num_threads = self._num_threads, n
            if self._running and not self._stop:
                self._start_threads_locked()
            self._wake_all_locked()
            self._wait_cond.notify_all()
        if old != n:
            logger.info("%s: num_threads %d -> %d", self._name, old, n)

    def wait_for_threads(self, count: int | None = None, timeout: float | None = None) -> bool:
        """Wait until exactly ``count`` (default: the target) workers are running: started,
        registered with the heartbeat map, not retired. False if ``timeout`` passed first."""
        if count is not None:
            _check_threads(count)
        end = None if timeout is None else monotonic() + check_seconds("timeout", timeout)
        with self._lock:
            while True:
                want = self._num_threads if count is None else count
                if len(self._threads) == want and len(self._worker_idents) == want:
                    return True
                if end is None:
                    self._wait_cond.wait()
                else:
                    remaining = end - monotonic()
                    if remaining <= 0:
                        return False
                    self._wait_cond.wait(remaining)

    # --- statistics -------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot of the counters, taken under the pool lock:

        ``name``, ``running``, ``threads`` (workers running: started, registered
        with the heartbeat map, not retired), ``threads_target``,
        ``threads_busy`` (units in flight), ``paused`` (bool), ``pause_depth``, and
        ``queues``: ``{queue name: {kind, items (queued; None if the storage
        cannot tell), in_flight, processed, failed, busy_seconds, timeout,
        suicide_timeout, item_duration_seconds, queue_wait_seconds}}``, the last
        two histogram snapshots (see ``histogram``) or None. ``processed`` counts
        every item whose process and finish steps ran, ``failed`` those of them
        where either raised.
        """
        with self._locked():
            return {
                "name": self._name,
                "running": self._running,
                "threads": len(self._worker_idents),
                "threads_target": self._num_threads,
                "threads_busy": self._processing,
                "paused": self._pause > 0,
                "pause_depth": self._pause,
                "queues": {q.name: q._stats() for q in self._queues},
            }

    # --- waking workers (pool lock held unless said otherwise) -------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The pool lock, for calls that do not wait: also from a finish step or storage
        hook, whose worker holds it already."""
        took = self._lock_unless_held()
        try:
            yield
        finally:
            if took:
                self._lock.unlock()

    def _lock_unless_held(self) -> bool:
        """Take the pool lock unless this thread is a worker holding it (a finish step or
        storage hook queueing more work). Returns whether it was taken."""
        if self._owner == threading.get_ident():
            return False
        self._lock.lock()
        return True

    def _wake_idle(self) -> None:
        """Wake one idle worker; called without the lock after a lock-free enqueue."""
        took = self._lock_unless_held()
        try:
            self._wake_one_locked()
        finally:
            if took:
                self._lock.unlock()

    def _wake_one_locked(self) -> None:
        if self._idle:
            self._idle.popleft().cond.notify()

    def _wake_all_locked(self) -> None:
        self._idle.clear()
        for w in self._threads.values():
            w.cond.notify()

    def _not_from_worker(self, what: str) -> None:
        if threading.get_ident() in self._worker_idents:
            raise RuntimeError(
                f"{what} called from a worker of pool {self._name!r}, which it would wait for"
            )

    # --- workers ------------------------------------------------------------------------

    def _start_threads_locked(self) -> None:
        while len(self._threads) < self._num_threads:
            index = next(i for i in range(len(self._threads) + 1) if i not in self._threads)
            worker = Worker(self, index)
            self._threads[index] = worker
            worker.thread.start()

    def _any_work(self) -> bool:
        """Whether some queue has work; a queue whose _empty() raises is logged and passed."""
        for q in self._queues:
            try:
                if q._has_work():
                    return True
            except Exception:
                logger.exception("%s: checking queue %r for work raised", self._name, q.name)
        return False

    def _unidle(self, worker: Worker) -> None:
        try:
            self._idle.remove(worker)
        except ValueError:
            pass  # a producer took it off the list to wake it

    def _retire(self, worker: Worker) -> None:
        del self._threads[worker.index]
        self._retired.append(worker)
        logger.info(
            "%s: %s retires (%d threads left, target %d)",
            self._name,
            worker.name,
            len(self._threads),
            self._num_threads,
        )

    def _join_retired(self) -> None:
        alive = []
        for worker in self._retired:
            if worker.thread.is_alive():
                alive.append(worker)
            else:
                worker.thread.join()
        self._retired = alive
