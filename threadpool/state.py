"""``PoolState``: what a ThreadPool, its workers and its queues share, and how they use it.

One object per pool. Each field has one locking rule, stated here; the
pool (``pool.py``), its workers (``worker.py``) and its queues
(``queue_base.py`` and the queues) read and write the fields only as these
rules say, and call the methods below instead of reaching into each other.

Fixed when the pool is made (read anywhere, never written):
    ``pool`` (the ThreadPool, for messages), ``name``, ``thread_name``,
    ``worker_names`` (a format string of ``name`` and ``index``),
    ``heartbeat_map``, ``clock`` (the map's clock, or ``time.monotonic``),
    ``cpus``, ``ioprio``, ``idle_grace``, ``idle_wait``, ``locked_paths``
    (see ``freethreading``), ``lock`` (the pool lock: a ``lockdep.Mutex``
    named ``ThreadPool::<name>``) and ``cond`` (a ``lockdep.Cond`` on it:
    pause, drain, stop and thread-count waiters).

Written with ``lock`` held; read with it held, except where a field says
"hint" (a read without the lock that may be stale, followed by a locked
re-check before anything is decided on it):
    ``queues``      the attached queues. Replaced whole, never mutated, so a
                    reader without the lock sees some complete list.
    ``last``        index in ``queues`` of the queue served last (round-robin).
    ``threads``     live workers by index; ``retired``: workers that left,
                    to be joined; ``idents``: thread idents of the workers
                    running their loop (registered with the heartbeat map).
    ``starting``    workers made (and in ``threads``) whose threads are not
                    started yet: a thread is started only once the pool lock
                    is released (``start_pending``, called by whoever releases
                    it), because ``Thread.start()`` waits for the new thread,
                    which would wait for the lock, and everything else with
                    it. A deque: any thread may pop one to start it.
    ``num_threads`` the target number of workers. In an elastic pool it moves
                    between ``min_threads`` and ``max_threads``: up by one when
                    an item is queued while no worker is free for it, down by
                    one when a worker idle for ``idle_timeout`` seconds exits.
    ``elastic``, ``min_threads``, ``max_threads``, ``idle_timeout``: the
                    sizing (``elastic`` False: a fixed size, ``num_threads``).
    ``can_grow``    elastic and below ``max_threads``. Hint: ``queue()`` reads
                    it without the lock, to call ``item_queued()`` even when
                    no worker is idle. A worker about to exit for idleness
                    sets it (and lowers ``num_threads``) before it looks at the
                    queues a last time, so an item queued meanwhile either
                    keeps it or makes the pool grow again.
    ``idle``        workers asleep for want of work, each on its own
                    condition. Hint: ``queue()`` reads it without the lock
                    after a lock-free enqueue (then ``item_queued()`` takes
                    the lock and wakes one). A worker lists itself here and
                    only then looks at the queues a last time before it
                    sleeps, so an item is never left behind by a sleeping pool.
    ``processing``  units in flight (dequeued, not yet finished), expiry
                    steps included.
    ``deadline_hint`` when (monotonic) the earliest timer of a queue is due:
                    no later than ``next_deadline()`` of every queue, inf if
                    none. Hint: a producer that puts an item on a queue's
                    heap lowers it without the pool lock; the worker that
                    runs the expiry step sets it to inf *before* it looks at
                    the queues and then to the minimum it found, so a value
                    lowered meanwhile is kept. A queue that sets items aside
                    as expired sets it to 0. Workers look at it at the top of
                    each loop; while heaps hold timers it is never more than
                    ``RECHECK`` seconds ahead, which bounds how late a
                    lowering lost to a race between two producers can make an
                    expiry.
    ``now``         a reading of ``time.monotonic`` by the worker that holds
                    the lock, taken at the end of its last process step, when
                    it woke, or when it began: what the queues compare
                    deadlines with when they hand out an item (at most one
                    finish step old; one clock reading per item fewer).
    ``pause``       pause depth; ``draining``: drain() callers waiting.
    ``stop``        the workers are to exit; ``running``: started, not stopped.
    ``os_warned``   OS settings (thread name, affinity, I/O priority) already
                    warned about.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from time import monotonic, sleep
from typing import TYPE_CHECKING

import lockdep

from .heartbeat import INF, HeartbeatMap
from .worker import BACKOFF, Worker

if TYPE_CHECKING:
    from .queue_base import BaseWorkQueue

logger = logging.getLogger("threadpool")

RECHECK = 0.1  # seconds: the most deadline_hint lies ahead while timers are pending


class PoolState:
    """The shared state of one pool; see the module docstring for every field's rule."""

    __slots__ = (
        "can_grow",
        "clock",
        "cond",
        "cpus",
        "deadline_hint",
        "draining",
        "elastic",
        "heartbeat_map",
        "idents",
        "idle",
        "idle_grace",
        "idle_timeout",
        "idle_wait",
        "ioprio",
        "last",
        "lock",
        "locked_paths",
        "max_threads",
        "min_threads",
        "name",
        "now",
        "num_threads",
        "os_warned",
        "pause",
        "pool",
        "processing",
        "queues",
        "retired",
        "running",
        "starting",
        "stop",
        "thread_name",
        "threads",
        "worker_names",
    )

    def __init__(
        self,
        pool: object,
        name: str,
        num_threads: int,
        *,
        thread_name: str,
        worker_names: str,
        heartbeat_map: HeartbeatMap | None,
        cpus: frozenset[int] | None,
        ioprio: tuple[str, int] | None,
        idle_grace: float,
        idle_wait: float,
        locked_paths: bool,
    ) -> None:
        self.pool = pool
        self.name = name
        self.thread_name = thread_name
        self.worker_names = worker_names
        self.heartbeat_map = heartbeat_map
        self.clock: Callable[[], float] = (
            heartbeat_map.clock if heartbeat_map is not None else monotonic
        )
        self.cpus = cpus
        self.ioprio = ioprio
        self.idle_grace = idle_grace
        self.idle_wait = idle_wait
        self.locked_paths = locked_paths
        self.lock = lockdep.Mutex(f"ThreadPool::{name}")
        self.cond = lockdep.Cond(self.lock)

        self.queues: list[BaseWorkQueue] = []
        self.last = -1
        self.threads: dict[int, Worker] = {}
        self.retired: list[Worker] = []
        self.starting: deque[Worker] = deque()
        self.idents: set[int] = set()
        self.num_threads = num_threads
        self.elastic = False
        self.min_threads = num_threads
        self.max_threads = num_threads
        self.idle_timeout = 30.0
        self.can_grow = False
        self.idle: deque[Worker] = deque()
        self.processing = 0
        self.deadline_hint = INF
        self.now = monotonic()
        self.pause = 0
        self.draining = 0
        self.stop = False
        self.running = False
        self.os_warned: set[str] = set()

    def __repr__(self) -> str:
        return f"<PoolState of {self.name!r}>"

    # --- the lock, for code that may already hold it -----------------------------------

    def lock_unless_held(self) -> bool:
        """Take the pool lock unless this thread holds it (a worker's finish step or
        storage hook queueing more work). Returns whether it was taken.

        A lock another thread holds is waited for as a worker waits for it
        (``Worker._relock``): a few short sleeps, which hand the GIL to the holder,
        before queueing on it - on the locked paths every producer comes here, and
        queueing at once would convoy them. The acquisition itself always blocks, so
        that lockdep sees the order of the locks held around it (a trylock it would
        not count). A lock nobody holds is not asked whose it is (is_locked() is the
        cheaper question)."""
        lock = self.lock
        if lock.is_locked():
            if lock.is_locked_by_me():
                return False
            for delay in BACKOFF:
                sleep(delay)
                if not lock.is_locked():
                    break
        lock.lock()
        return True

    @contextmanager
    def locked(self) -> Iterator[None]:
        """The pool lock, for calls that do not wait: also from a finish step or storage
        hook, whose worker holds it already."""
        took = self.lock_unless_held()
        try:
            yield
        finally:
            if took:
                self.lock.unlock()
                if self.starting:
                    self.start_pending()

    # --- waking workers ----------------------------------------------------------------

    def item_queued(self) -> None:
        """After a lock-free enqueue found ``idle`` or ``can_grow`` set (the hints): take
        the lock and see (item_queued_locked)."""
        took = self.lock_unless_held()
        try:
            self.item_queued_locked()
        finally:
            if took:
                self.lock.unlock()
                if self.starting:
                    self.start_pending()

    def item_queued_locked(self) -> None:
        """An item was queued (lock held): wake one idle worker, if one sleeps; else, in
        an elastic pool, start a worker if none is free for it."""
        if self.idle:
            self.idle.popleft().cond.notify()
        elif self.can_grow and self.waiting() > len(self.threads) - self.processing:
            self.grow_locked(1)

    # --- sizing (lock held) ----------------------------------------------------------------

    def set_fixed(self, n: int) -> None:
        self.elastic = False
        self.num_threads = n
        self.can_grow = False
        self._resized()

    def set_elastic(self, min_threads: int, max_threads: int, idle_timeout: float) -> None:
        self.elastic = True
        self.min_threads = min_threads
        self.max_threads = max_threads
        self.idle_timeout = idle_timeout
        self.num_threads = min(max(self.num_threads, min_threads), max_threads)
        self.can_grow = self.num_threads < max_threads
        self._resized()
        self.grow_for_backlog()

    def _resized(self) -> None:
        if self.running and not self.stop:
            self.start_threads_locked()
        self.wake_all_locked()
        self.cond.notify_all()

    def waiting(self) -> int:
        """Items queued in every queue (a queue that cannot tell counts 1 if it has work)."""
        total = 0
        for q in self.queues:
            n = q.size()
            total += n if n is not None else int(q.has_work())
        return total

    def grow_locked(self, by: int) -> None:
        """Raise the target of an elastic pool by up to ``by`` workers and start them."""
        if not self.running or self.stop or self.pause:
            return
        old = self.num_threads
        self.num_threads = min(max(old, len(self.threads)) + by, self.max_threads)
        self.can_grow = self.num_threads < self.max_threads
        if self.num_threads > old:
            self.start_threads_locked()
            logger.info(
                "%s: no worker free for the queued items: grows to %d threads (max %d)",
                self.name,
                self.num_threads,
                self.max_threads,
            )

    def grow_for_backlog(self) -> None:
        """Elastic pool: start workers for the items already queued (at start, unpause,
        resize), as many as the items need, up to the maximum."""
        if self.elastic:
            short = self.waiting() - (len(self.threads) - self.processing)
            if short > 0:
                self.grow_locked(short)

    def idle_exit(self, worker: Worker) -> bool:
        """An elastic pool's ``worker`` has been idle for ``idle_timeout``: lower the target
        and retire it, unless that would go below the minimum or work is queued.
        Returns whether it retired."""
        if not self.elastic or len(self.threads) <= self.min_threads:
            return False
        old, old_grow = self.num_threads, self.can_grow
        self.num_threads = max(min(old, len(self.threads)) - 1, self.min_threads)
        self.can_grow = True  # before the last look: see the rule for can_grow
        if self.any_work():
            self.num_threads, self.can_grow = old, old_grow
            return False
        self.retire(worker, f"idle for {self.idle_timeout:g}s")
        return True

    def wake_all_locked(self) -> None:
        """Wake every worker (lock held): the queues, the size or the state changed."""
        self.idle.clear()
        for w in self.threads.values():
            w.cond.notify()

    def unidle(self, worker: Worker) -> None:
        """Take ``worker`` off the idle list (lock held), unless a producer did already."""
        try:
            self.idle.remove(worker)
        except ValueError:
            pass

    # --- what the workers ask ----------------------------------------------------------

    def any_work(self) -> bool:
        """Whether some queue has work (lock held); a queue whose check raises is logged
        and passed over."""
        for q in self.queues:
            try:
                if q.has_work():
                    return True
            except Exception:
                logger.exception("%s: checking queue %r for work raised", self.name, q.name)
        return False

    def in_flight(self, queue: BaseWorkQueue) -> int:
        """Units of ``queue`` a worker holds (lock held): a count over the workers, which
        costs nothing per unit (a drain is woken when a queue runs empty instead)."""
        return sum(1 for w in self.threads.values() if w.serving is queue)

    def unit_done(self, queue: BaseWorkQueue) -> None:
        """A worker finished a unit of ``queue`` (lock held, ``processing`` lowered):
        wake pause() once nothing is in flight, drain() once the queue is empty."""
        if (self.pause and not self.processing) or (self.draining and not queue.has_work()):
            self.cond.notify_all()

    def worker_started(self, ident: int) -> None:
        """A worker entered its loop (lock held)."""
        self.idents.add(ident)
        self.cond.notify_all()  # wait_for_threads()

    def worker_exited(self, worker: Worker) -> None:
        """A worker left its loop, for whatever reason (lock held)."""
        self.idents.discard(worker.ident)
        if self.threads.get(worker.index) is worker:
            del self.threads[worker.index]
        self.cond.notify_all()

    def retire(self, worker: Worker, why: str = "") -> None:
        """``worker`` leaves because the pool has more workers than its target (lock held)."""
        del self.threads[worker.index]
        self.retired.append(worker)
        logger.info(
            "%s: %s retires%s (%d threads left, target %d)",
            self.name,
            worker.name,
            f", {why}" if why else "",
            len(self.threads),
            self.num_threads,
        )

    def join_retired(self) -> None:
        """Join the retired workers that have exited (lock held)."""
        alive = []
        for worker in self.retired:
            if worker.thread.is_alive():
                alive.append(worker)
            else:
                worker.thread.join()
        self.retired = alive

    def warn_os_once(self, what: str, exc: OSError) -> None:
        """Log, once per pool and setting, that an OS setting cannot be applied."""
        with self.locked():
            if what in self.os_warned:
                return
            self.os_warned.add(what)
        logger.warning("%s: cannot set the %s of its workers: %s", self.name, what, exc)

    def next_deadline(self, now: float) -> float:
        """The earliest timer of the queues (lock held), at most RECHECK after ``now``."""
        soonest = INF
        for q in self.queues:
            try:
                soonest = min(soonest, q.next_deadline())
            except Exception:
                logger.exception("%s: the timers of queue %r raised", self.name, q.name)
        return soonest if soonest == INF else min(soonest, now + RECHECK)

    # --- workers --------------------------------------------------------------------------

    def start_threads_locked(self) -> None:
        """Make workers until there are ``num_threads`` (lock held); their threads start
        when the lock is released (see ``starting``)."""
        while len(self.threads) < self.num_threads:
            index = next(i for i in range(len(self.threads) + 1) if i not in self.threads)
            worker = Worker(self, index)
            self.threads[index] = worker
            self.starting.append(worker)

    def start_pending(self) -> None:
        """Start the threads of the workers made meanwhile (lock not held)."""
        starting = self.starting
        while starting:
            try:
                worker = starting.popleft()
            except IndexError:  # another thread took the last one
                return
            worker.start()
