"""``ThreadPool``: worker threads serving several work queues (Ceph's ``ThreadPool``).

Control. ``start()``; ``stop(clear_after=True, timeout=None)`` stops and
joins the workers (each finishes the unit in hand) and, with
``clear_after``, removes the items still queued and returns them as
``{queue name: [items]}``, logging their count; with a ``timeout`` it
returns by then whatever the handlers do, naming the workers still stuck in
one (``StopResult.stuck``); ``start()`` may follow. ``pause()`` stops new work and waits for
the units in flight; ``pause_new()`` only stops new work; each counts up and
is undone by one ``unpause()``. ``drain(queue=None)`` waits until the queue
(or every queue) is empty with nothing of it in flight, and raises
RuntimeError instead of waiting forever when nothing could ever process the
queued work (paused, stopped, or no threads). ``set_num_threads(n)`` grows at
once and shrinks lazily: an extra worker retires at the top of its loop.

Elastic sizing (GlusterFS's ``syncenv``). With ``max_threads`` (and
``min_threads``, default ``num_threads``) the pool starts at ``num_threads``
within those limits, grows by a worker whenever an item is queued while no
worker is free for it (never above ``max_threads``), and a worker idle for
``idle_timeout`` seconds exits while the pool is above ``min_threads``.
``set_elastic(min, max, idle_timeout)`` and ``set_num_threads(n)`` switch a
running pool between elastic and fixed sizing.
``add_work_queue`` / ``remove_work_queue`` work while running. The methods
that wait (``pause``, ``drain``, ``stop``) raise RuntimeError when called
from one of the pool's own workers, which they would wait for; the others
may be called from anywhere, finish steps included.

The workers and their loop are in ``worker.py``; what the pool, its
workers and its queues share is the pool's ``PoolState`` (``state.py``),
which states each field's locking rule.

The hand-off. Queueing to a ready-made queue takes no lock: it appends to a
deque (atomic under the GIL; workers remove items only with the pool lock
held) and looks at ``idle``, the workers asleep for want of work, taking the
pool lock only to wake one of those. A worker lists itself in ``idle`` and
only then looks at the queues a last time before sleeping, so an item is
never left behind by a sleeping pool. Without the GIL the hand-off takes the
pool lock instead (``freethreading``). Workers take the pool lock back after
each unit without queueing on it in the kernel (``Worker._relock``), which is
what keeps four workers from convoying on it.

The pool's lock is a ``lockdep.Mutex`` named ``ThreadPool::<name>`` and its
conditions are ``lockdep.Cond``\\ s, so lockdep validates the pool's own
locking along with the user's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from time import monotonic
from typing import TYPE_CHECKING, Any

from . import _osthread, freethreading
from .heartbeat import HeartbeatMap, check_seconds
from .queue_base import BaseWorkQueue, check_name
from .state import PoolState

if TYPE_CHECKING:
    from .executor import Executor

logger = logging.getLogger("threadpool")


class StopResult(dict[str, list[Any]]):
    """What ``ThreadPool.stop`` returns: ``{queue name: [items]}``, the items it
    cleared (queues with none left out), and ``stuck``: the names of the workers
    still running a unit when the stop's timeout passed (empty when every worker
    stopped), each as ``"<worker> (queue <name>)"``. A stuck worker's unit is not
    in the dict: the worker still holds it, and finishes it if it ever returns
    (then exits)."""

    def __init__(self, cleared: dict[str, list[Any]], stuck: list[str]) -> None:
        super().__init__(cleared)
        self.stuck = stuck

    def __repr__(self) -> str:
        return f"StopResult({dict(self)!r}, stuck={self.stuck!r})"


def _check_threads(n: object, keeps: str = "") -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"num_threads must be an int >= 0, got {n!r}{keeps}")
    if n < 0:
        raise ValueError(f"num_threads must be an int >= 0, got {n!r}{keeps}")
    return n


def _check_worker_names(template: object) -> str:
    msg = 'worker_names must be a str formatting {name} and {index}, as "{name} thread {index}"'
    if not isinstance(template, str):
        raise TypeError(f"{msg}; got {template!r}")
    try:
        a, b = template.format(name="p", index=0), template.format(name="p", index=1)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"{msg}; got {template!r} ({exc})") from None
    if a == b or not a:
        raise ValueError(f"{msg}: each worker needs a name of its own; got {template!r}")
    return template


def _check_elastic(lo: object, hi: object, idle: object) -> tuple[int, int, float]:
    for what, n in (("min_threads", lo), ("max_threads", hi)):
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"{what} must be an int >= 0, got {n!r}")
    assert isinstance(lo, int) and isinstance(hi, int)
    if hi < 1:
        raise ValueError(f"max_threads must be an int >= 1, got {hi!r}")
    if not 0 <= lo <= hi:
        raise ValueError(f"min_threads must be 0..max_threads ({hi}), got {lo!r}")
    return lo, hi, check_seconds("idle_timeout", idle)


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
    min_threads=None, max_threads=None, idle_timeout=30.0, cpu_affinity=None,
    ioprio=None, idle_grace=60.0, idle_wait=2.0,
    worker_names="{name} thread {index}")``. With ``max_threads`` the pool is
    elastic (see the module docstring). Workers are named by ``worker_names``
    (thread names and heartbeat workers); the OS thread is named
    ``thread_name`` (default ``name``) plus ``-<n>``, cut to 15 bytes.
    ``cpu_affinity`` (CPU numbers) and ``ioprio`` (``("best-effort", 4)``,
    say) apply to every worker where the OS offers them. All methods are
    thread-safe.
    """

    def __init__(
        self,
        name: str,
        num_threads: int,
        thread_name: str | None = None,
        heartbeat_map: HeartbeatMap | None = None,
        *,
        min_threads: int | None = None,
        max_threads: int | None = None,
        idle_timeout: float = 30.0,
        cpu_affinity: Iterable[int] | None = None,
        ioprio: tuple[str, int] | None = None,
        idle_grace: float = 60.0,
        idle_wait: float = 2.0,
        worker_names: str = "{name} thread {index}",
    ) -> None:
        check_name("ThreadPool", name)
        num_threads = _check_threads(num_threads)
        if thread_name is not None:
            check_name("thread", thread_name)
        if heartbeat_map is not None and not isinstance(heartbeat_map, HeartbeatMap):
            raise TypeError(f"heartbeat_map must be a HeartbeatMap or None, got {heartbeat_map!r}")
        idle_wait = check_seconds("idle_wait", idle_wait)
        if idle_wait == 0:
            raise ValueError("idle_wait must be a number of seconds > 0, got 0")
        self._state = PoolState(
            self,
            name,
            num_threads,
            thread_name=thread_name or name,
            worker_names=_check_worker_names(worker_names),
            heartbeat_map=heartbeat_map,
            cpus=_check_cpus(cpu_affinity),
            ioprio=_check_ioprio(ioprio),
            idle_grace=check_seconds("idle_grace", idle_grace),
            idle_wait=idle_wait,
            locked_paths=freethreading.locked_paths(),
        )
        self._name = name
        if max_threads is not None:
            lo = min_threads
            if lo is None:  # the pool's base size, within the maximum
                lo = min(num_threads, max_threads) if isinstance(max_threads, int) else 0
            sizing = _check_elastic(lo, max_threads, idle_timeout)
            with self._state.lock:
                self._state.set_elastic(*sizing)
        elif min_threads is not None:
            raise ValueError(
                f"min_threads={min_threads!r} needs max_threads (an elastic pool has both)"
            )
        else:
            self._state.idle_timeout = check_seconds("idle_timeout", idle_timeout)

    # --- identity -----------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def thread_name(self) -> str:
        return self._state.thread_name

    @property
    def heartbeat_map(self) -> HeartbeatMap | None:
        return self._state.heartbeat_map

    @property
    def num_threads(self) -> int:
        """The target number of workers (set_num_threads)."""
        return self._state.num_threads

    def get_num_threads(self) -> int:
        """Ceph's name for ``num_threads``."""
        return self._state.num_threads

    @property
    def running(self) -> bool:
        return self._state.running

    @property
    def elastic(self) -> bool:
        """Whether the pool sizes itself between min_threads and max_threads."""
        return self._state.elastic

    @property
    def min_threads(self) -> int | None:
        """The elastic pool's minimum (None for a fixed-size pool)."""
        return self._state.min_threads if self._state.elastic else None

    @property
    def max_threads(self) -> int | None:
        """The elastic pool's maximum (None for a fixed-size pool)."""
        return self._state.max_threads if self._state.elastic else None

    @property
    def idle_timeout(self) -> float:
        """Seconds an elastic pool's worker may stay idle before it exits."""
        return self._state.idle_timeout

    @property
    def locked_paths(self) -> bool:
        """Whether this pool's hand-offs take the pool lock (see ``freethreading``)."""
        return self._state.locked_paths

    @property
    def work_queues(self) -> list[BaseWorkQueue]:
        return list(self._state.queues)

    def worker_threads(self) -> list[threading.Thread]:
        """The threads of the workers: running, or retired and not joined yet."""
        st = self._state
        with st.locked():
            return [w.thread for w in (*st.threads.values(), *st.retired)]

    def executor(self, queue: Any = None) -> Executor:
        """A ``concurrent.futures`` executor whose calls run on this pool's workers, with
        its heartbeats and counters: through ``queue``, a ``CallQueue`` (bounded, with
        deadlines, as made) or the name of a new one (None: "calls"). See ``executor``."""
        from .executor import Executor

        return Executor.on_pool(self, queue)

    def __repr__(self) -> str:
        state = "running" if self._state.running else "stopped"
        return f"<ThreadPool {self._name!r} {state}, {len(self._state.threads)} threads>"

    # --- queues -------------------------------------------------------------------

    def add_work_queue(self, queue: BaseWorkQueue) -> None:
        """Attach a queue (while running too). ValueError if it is attached anywhere
        already or another attached queue has its name."""
        if not isinstance(queue, BaseWorkQueue):
            raise TypeError(f"add_work_queue() needs a work queue, got {queue!r}")
        st = self._state
        with st.locked():
            if queue.pool is None and any(q.name == queue.name for q in st.queues):
                raise ValueError(f"pool {self._name!r} already has a queue named {queue.name!r}")
            queue.attach(st)
            st.queues = [*st.queues, queue]
            st.wake_all_locked()
            st.grow_for_backlog()

    def remove_work_queue(self, queue: BaseWorkQueue) -> None:
        """Detach a queue (while running too). Its queued items stay in it; units in
        flight still finish. RuntimeError for a PointerWQ with items processing."""
        st = self._state
        with st.locked():
            if queue not in st.queues:
                raise ValueError(f"{queue!r} is not attached to pool {self._name!r}")
            if not queue.can_detach():
                raise RuntimeError(
                    f"cannot remove {queue!r} from pool {self._name!r} while its items process"
                )
            st.queues = [q for q in st.queues if q is not queue]
            queue.detach()
            st.cond.notify_all()

    # --- start and stop -----------------------------------------------------------

    def start(self) -> None:
        """Start the workers. RuntimeError if the pool is running."""
        st = self._state
        with st.lock:
            if st.running:
                raise RuntimeError(f"pool {self._name!r} is already running")
            st.stop = False
            st.running = True
            st.start_threads_locked()
            st.grow_for_backlog()
        st.start_pending()
        logger.info("%s: started with %d threads", self._name, st.num_threads)

    def stop(self, clear_after: bool = True, timeout: float | None = None) -> StopResult:
        """Stop the workers and join them; each finishes the unit it holds first.

        With ``clear_after``, the items still queued are removed and returned as
        ``{queue name: [items]}`` (queues with none are left out) and their count
        is logged; without it they stay queued for the next ``start()``.

        ``timeout`` (seconds) bounds the wait for the workers: past it, stop()
        clears (with ``clear_after``) and returns anyway, and the result's
        ``stuck`` names the workers still in their loop, logged as an error. A
        handler stuck for ever cannot make stop() hang when a timeout is given.
        A stuck worker exits once its unit is done; a ``start()`` in between
        counts it among the workers again.
        """
        if not isinstance(clear_after, bool):
            raise TypeError(f"clear_after must be True or False, got {clear_after!r}")
        end = None if timeout is None else monotonic() + check_seconds("timeout", timeout)
        self._not_from_worker("stop()")
        st = self._state
        with st.lock:
            st.stop = True
            st.wake_all_locked()
            st.cond.notify_all()
            workers = [*st.threads.values(), *st.retired]
            st.retired = []
        st.start_pending()  # made, not started yet: they start, see stop, and exit
        for worker in workers:
            worker.join(None if end is None else max(end - monotonic(), 0.0))
        with st.lock:
            st.running = False
            st.idle.clear()
            queues = st.queues
            stuck = [w.describe() for w in workers if w.thread.is_alive()]
        self._expire_left(queues)
        cleared: dict[str, list[Any]] = {}
        if clear_after:
            for q in queues:
                items = q.clear()
                if items:
                    cleared[q.name] = items
        if stuck:
            logger.error(
                "%s: stop() timed out after %gs; %d workers still running: %s",
                self._name,
                timeout,
                len(stuck),
                ", ".join(stuck),
            )
        if cleared:
            logger.warning(
                "%s: stopped; %d unprocessed items cleared and handed back (%s)",
                self._name,
                sum(map(len, cleared.values())),
                ", ".join(f"{name}: {len(items)}" for name, items in cleared.items()),
            )
        else:
            logger.info("%s: stopped", self._name)
        return StopResult(cleared, stuck)

    def _expire_left(self, queues: list[BaseWorkQueue]) -> None:
        """Hand over what the workers found expired but had no time to (at stop)."""
        st = self._state
        for q in queues:
            with st.lock:
                items = q.take_expired(monotonic())
            if items:
                q.hand_expired(items)
                with st.lock:
                    q.finish_expired(items)

    # --- pause and drain ----------------------------------------------------------

    def pause(self) -> None:
        """Stop handing out new work and wait until no unit is in flight (nests)."""
        self._not_from_worker("pause()")
        st = self._state
        with st.lock:
            st.pause += 1
            st.cond.notify_all()
            while st.processing:
                st.cond.wait()

    def pause_new(self) -> None:
        """Stop handing out new work, without waiting (nests with pause)."""
        st = self._state
        with st.locked():
            st.pause += 1
            st.cond.notify_all()

    def unpause(self) -> None:
        """Undo one pause() or pause_new(). RuntimeError if the pool is not paused."""
        st = self._state
        with st.locked():
            if st.pause == 0:
                raise RuntimeError(f"unpause() of pool {self._name!r}, which is not paused")
            st.pause -= 1
            if st.pause == 0:
                st.wake_all_locked()
                st.grow_for_backlog()

    @property
    def paused(self) -> bool:
        return self._state.pause > 0

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
        st = self._state
        with st.lock:
            if queue is not None and queue.pool is not self:
                raise ValueError(f"{queue!r} is not attached to pool {self._name!r}")
            st.draining += 1
            try:
                while True:
                    if queue is None:
                        queued = any(q.has_work() for q in st.queues)
                        busy = st.processing > 0 or any(q.busy() for q in st.queues)
                    else:
                        queued = queue.has_work()
                        busy = queue.busy() or st.in_flight(queue) > 0
                    if not queued and not busy:
                        return True
                    if queued:
                        self._check_can_progress(queue)
                    if st.starting:  # the check grew the pool: let the workers start
                        st.lock.unlock()
                        st.start_pending()
                        st.lock.lock()
                        continue
                    if end is None:
                        st.cond.wait(st.idle_wait)
                    else:
                        remaining = end - monotonic()
                        if remaining <= 0:
                            return False
                        st.cond.wait(min(remaining, st.idle_wait))
            finally:
                st.draining -= 1

    def _check_can_progress(self, queue: BaseWorkQueue | None) -> None:
        st = self._state
        what = f"queue {queue.name!r}" if queue is not None else "the queues"
        why = None
        if st.pause:
            why = f"the pool is paused ({st.pause} pause(s) to undo with unpause())"
        elif not st.running or st.stop:
            why = "the pool is not running (start() it)"
        elif st.num_threads == 0 and not (st.elastic and st.max_threads > 0):
            why = "the pool has no threads (set_num_threads(n) with n > 0)"
        elif st.num_threads == 0:
            st.grow_for_backlog()
        if why is not None:
            raise RuntimeError(
                f"drain() of pool {self._name!r} would never end: work is queued in {what} "
                f"but {why}"
            )

    # --- size ------------------------------------------------------------------------

    def set_num_threads(self, n: int) -> None:
        """Set the target number of workers (n >= 0): grows at once, shrinks lazily. An
        elastic pool becomes a fixed-size one.

        TypeError/ValueError for anything but an int >= 0; the size is then unchanged.
        """
        st = self._state
        n = _check_threads(n, f"; pool {self._name!r} keeps {st.num_threads} threads")
        with st.locked():
            old, was_elastic = st.num_threads, st.elastic
            st.set_fixed(n)
        if old != n or was_elastic:
            logger.info("%s: num_threads %d -> %d (fixed)", self._name, old, n)

    def set_elastic(
        self, min_threads: int, max_threads: int, idle_timeout: float | None = None
    ) -> None:
        """Make the pool elastic between ``min_threads`` and ``max_threads`` workers (also
        a running pool, also one already elastic); ``idle_timeout`` None keeps the
        current one. The target is brought within the limits at once.

        TypeError/ValueError (the sizing then unchanged) unless 0 <= min <= max, max >= 1
        and idle_timeout is a number of seconds >= 0.
        """
        st = self._state
        lo, hi, idle = _check_elastic(
            min_threads, max_threads, st.idle_timeout if idle_timeout is None else idle_timeout
        )
        with st.locked():
            old = st.num_threads
            st.set_elastic(lo, hi, idle)
            new = st.num_threads
        logger.info(
            "%s: elastic, %d to %d threads, idle timeout %gs (target %d -> %d)",
            self._name,
            lo,
            hi,
            idle,
            old,
            new,
        )

    def wait_for_threads(self, count: int | None = None, timeout: float | None = None) -> bool:
        """Wait until exactly ``count`` (default: the target) workers are running: started,
        registered with the heartbeat map, not retired. False if ``timeout`` passed first."""
        if count is not None:
            _check_threads(count)
        end = None if timeout is None else monotonic() + check_seconds("timeout", timeout)
        st = self._state
        with st.lock:
            while True:
                want = st.num_threads if count is None else count
                if len(st.threads) == want and len(st.idents) == want:
                    return True
                if end is None:
                    st.cond.wait()
                else:
                    remaining = end - monotonic()
                    if remaining <= 0:
                        return False
                    st.cond.wait(remaining)

    # --- statistics -------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot of the counters, taken under the pool lock:

        ``name``, ``running``, ``threads`` (workers running: started, registered
        with the heartbeat map, not retired), ``threads_target``,
        ``threads_busy`` (units in flight), ``paused`` (bool), ``pause_depth``,
        ``elastic`` (bool), ``min_threads`` and ``max_threads`` (None unless
        elastic), ``idle_timeout``, ``locked_paths`` (bool), and
        ``queues``: ``{queue name: {kind, items (queued; None if the storage
        cannot tell), in_flight, processed, failed, busy_seconds, timeout,
        suicide_timeout, item_duration_seconds, queue_wait_seconds}}``, the last
        two histogram snapshots (see ``histogram``) or None. ``processed`` counts
        every item whose process and finish steps ran, ``failed`` those of them
        where either raised.
        """
        st = self._state
        with st.locked():
            return {
                "name": self._name,
                "running": st.running,
                "threads": len(st.idents),
                "threads_target": st.num_threads,
                "threads_busy": st.processing,
                "paused": st.pause > 0,
                "pause_depth": st.pause,
                "elastic": st.elastic,
                "min_threads": st.min_threads if st.elastic else None,
                "max_threads": st.max_threads if st.elastic else None,
                "idle_timeout": st.idle_timeout,
                "locked_paths": st.locked_paths,
                "queues": {q.name: q.snapshot() for q in st.queues},
            }

    def _not_from_worker(self, what: str) -> None:
        if threading.get_ident() in self._state.idents:
            raise RuntimeError(
                f"{what} called from a worker of pool {self._name!r}, which it would wait for"
            )
