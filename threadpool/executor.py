"""``Executor``: ``concurrent.futures.ThreadPoolExecutor`` on a ThreadPool; ``CallQueue``.

``Executor(max_workers=None, thread_name_prefix="", initializer=None,
initargs=())`` is a drop-in ThreadPoolExecutor: the same defaults
(``min(32, cpu count + 4)`` workers, threads named ``<prefix>_<n>``, started
on demand), the same errors (``RuntimeError`` after ``shutdown()`` or once
the interpreter shuts down, ``BrokenThreadPool`` once an initializer failed,
``ValueError`` for ``max_workers <= 0``), ``submit``, ``map(timeout,
chunksize)``, ``shutdown(wait, cancel_futures)``, the context manager, and
the same end of life: calls queued when the executor is shut down (or
collected, or the interpreter exits) still run, then the threads exit. It
runs on a ``ThreadPool`` of its own, elastic between 0 and ``max_workers``
workers (an idle worker exits after ``idle_timeout`` seconds, which
ThreadPoolExecutor's never do), and a ``CallQueue``; it passes CPython's own
thread-pool executor tests (``make cpython-executor``).

Beyond ThreadPoolExecutor, keyword-only: ``heartbeat_map`` (a hung call then
shows as an unhealthy worker, like any hung item), ``timeout`` and
``suicide_timeout`` (the calls' grace and suicide grace), ``max_items``,
``policy`` and ``block_timeout`` (a bounded queue of calls: ``submit`` then
follows the policy when it is full, see ``limits``), ``deadline`` (the
default for every call) and ``idle_timeout``. ``submit_within(seconds, fn,
...)`` gives one call a deadline: a call not started by then is not run, its
future raises ``DeadlineExpired``. ``run(fn, ...)`` is the asyncio side:
``await executor.run(fn, *args)`` submits without blocking the event loop and
waits for the result; cancelling the awaiting task cancels a call not yet
started. ``asyncio.wrap_future`` and ``loop.run_in_executor`` work as with
any executor.

``ThreadPool.executor(queue=None)`` makes an ``Executor`` on an existing
pool: its calls go to a ``CallQueue`` of that pool (a new one, or the one
given, with its bound, policy and deadlines) and share the pool's threads,
heartbeats and counters. Shutting it down stops its submissions and waits
for its queue, never the pool.

A call's future is a ``CallFuture`` (``future``): a
``concurrent.futures.Future`` that makes its condition, waiter and callback
lists only when something waits or registers (most of a short call's cost,
and of the garbage collector's work, in ThreadPoolExecutor). It gets its
outcome where ThreadPoolExecutor sets it: in the worker, without the pool
lock (so done callbacks never run under it); a call that raised counts as
failed in the queue's statistics but is not logged (its future has the
exception). A call dropped by ``drop_oldest`` fails with ``QueueFull``, one
past its deadline with ``DeadlineExpired``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import _base as futures_base
from concurrent.futures.thread import BrokenThreadPool
from typing import TYPE_CHECKING, Any, TypeVar

import lockdep

from .future import CallFuture
from .heartbeat import HeartbeatMap, TPHandle
from .limits import DeadlineExpired, QueueFull
from .queue_base import DEFAULT_TIMEOUT
from .queues import WorkQueue
from .storage import BaseOptions

if TYPE_CHECKING:
    from typing import Unpack

    from .pool import ThreadPool

T = TypeVar("T")

_prefixes = itertools.count()
_interpreter_exiting = False
_owned_pools: weakref.WeakSet[ThreadPool] = weakref.WeakSet()  # pools Executors made
_registry_lock = lockdep.Mutex("threadpool.Executor registry")  # the two above


def _reinit_after_fork() -> None:
    """In a forked child: a fresh lock (another thread may hold the parent's), and no
    pools to wind down at exit: their threads stayed in the parent (multiprocessing's
    children run the interpreter's exit hooks, ours included)."""
    global _registry_lock, _owned_pools
    _registry_lock = lockdep.Mutex("threadpool.Executor registry")
    _owned_pools = weakref.WeakSet()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)


def _at_exit() -> None:
    """Before the interpreter joins its threads: no new calls, queued ones run, the
    executors' threads exit (ThreadPoolExecutor's _python_exit)."""
    global _interpreter_exiting
    with _registry_lock:
        _interpreter_exiting = True
        pools = list(_owned_pools)
    for pool in pools:
        _wind_down(pool, wait=True)


# Called by threading._shutdown(), before non-daemon threads are joined and before atexit
# handlers run (ThreadPoolExecutor registers its own hook there, for the same reason).
_register = getattr(threading, "_register_atexit", None)
if _register is not None:
    _register(_at_exit)
else:  # pragma: no cover - every CPython this supports has it
    import atexit

    atexit.register(_at_exit)


def _cpu_count() -> int:
    count = getattr(os, "process_cpu_count", os.cpu_count)()
    return count or 1


class _Call:
    """A submitted call: its future, the callable and its arguments."""

    __slots__ = ("args", "failed", "fn", "future", "kwargs")

    def __init__(
        self, future: Future[Any], fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Any
    ) -> None:
        self.future = future
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.failed = False


class CallOptions(BaseOptions, total=False):
    """The options of a CallQueue: those of every ready-made queue (``queues``) but the
    callbacks, which it sets itself, and ``deadlines``, which it always takes."""


class CallQueue(WorkQueue):
    """A work queue whose items are calls an ``Executor`` submitted.

    ``CallQueue(name="calls", *, initializer=None, initargs=(), **options)``:
    the options of every ready-made queue (``CallOptions``: bound, policy,
    deadline, timeouts, histograms; see ``queues``); it always takes deadlines. ``initializer``
    runs once in each worker thread before its first call of this queue; if it
    raises, the queue is broken: its pending calls fail with
    ``BrokenThreadPool`` and so does every later ``submit``. Give one to
    ``ThreadPool.executor()`` to bound or time its calls.
    """

    __slots__ = ("_initargs", "_initializer", "_ready", "broken")

    def __init__(
        self,
        name: str = "calls",
        *,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        **options: Unpack[CallOptions],
    ) -> None:
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        super().__init__(
            name,
            deadlines=True,
            on_drop=self._dropped_call,
            on_expire=self._expired_call,
            **options,
        )
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self._ready = threading.local()  # .done: the initializer ran in this thread
        self.broken: str | None = None  # why the queue is broken, once it is

    def _process(self, unit: Any, handle: TPHandle) -> None:
        """Run the call and set its future (ThreadPoolExecutor's _WorkItem.run)."""
        call: _Call = unit
        if (
            self.broken is None
            and self._initializer is not None
            and not getattr(self._ready, "done", False)
        ):
            self._initialize()
        if self.broken is not None:
            if call.future.set_running_or_notify_cancel():
                call.future.set_exception(BrokenThreadPool(self.broken))
            return
        future, fn, args, kwargs = call.future, call.fn, call.args, call.kwargs
        # The worker holds the call until it takes its next unit: it must not keep the
        # callable, its arguments or its result alive meanwhile (CPython's
        # test_no_stale_references and test_free_reference check this).
        call.future = call.fn = call.args = call.kwargs = None  # type: ignore[assignment]
        if not future.set_running_or_notify_cancel():
            return  # cancelled while queued
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            call.failed = True
            future.set_exception(exc)
            # The traceback refers to this frame: drop what it holds, to break the cycle.
            future = fn = args = kwargs = None  # type: ignore[assignment]
        else:
            future.set_result(result)

    process_unit = _process  # no step between the worker and the call

    def finish_unit(self, unit: Any, error: BaseException | None) -> None:
        """No finish step; a call that raised counts as failed (pool lock held)."""
        if unit.failed:
            self._failed += 1

    def _initialize(self) -> None:
        """Run the initializer in this thread; if it raises, the queue is broken."""
        try:
            assert self._initializer is not None
            self._initializer(*self._initargs)
        except BaseException:
            futures_base.LOGGER.critical("Exception in initializer:", exc_info=True)
            self._break("A thread initializer failed, the thread pool is not usable anymore")
            return
        self._ready.done = True

    def _break(self, why: str) -> None:
        self.broken = why
        for call in self.clear():
            if call.future.set_running_or_notify_cancel():
                call.future.set_exception(BrokenThreadPool(why))

    def _dropped_call(self, call: _Call) -> None:
        if call.future.set_running_or_notify_cancel():
            call.future.set_exception(
                QueueFull(self.name, self.max_items or 0, "drop_oldest", "dropped for a newer call")
            )

    def _expired_call(self, call: _Call) -> None:
        if call.future.set_running_or_notify_cancel():
            call.future.set_exception(DeadlineExpired(self.name))


def _wind_down(pool: ThreadPool, *, wait: bool) -> None:
    """An executor's own pool: its workers exit once nothing is queued (a worker idle for
    0 seconds above a minimum of 0); with ``wait``, after the last call, joined."""
    if not pool.running:
        return
    pool.set_elastic(0, max(pool.max_threads or 1, 1), 0.0)
    if wait:
        pool.drain()
        pool.stop()


class Executor(futures_base.Executor):
    """A drop-in ``concurrent.futures.ThreadPoolExecutor``; see the module docstring."""

    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        heartbeat_map: HeartbeatMap | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        suicide_timeout: float = 0.0,
        max_items: int | None = None,
        policy: str = "reject",
        block_timeout: float | None = None,
        deadline: float | None = None,
        idle_timeout: float = 60.0,
    ) -> None:
        from .pool import ThreadPool

        if max_workers is None:
            # ThreadPoolExecutor's default: I/O-bound calls release the GIL.
            max_workers = min(32, _cpu_count() + 4)
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        self._max_workers = max_workers
        self._thread_name_prefix = thread_name_prefix or f"ThreadPoolExecutor-{next(_prefixes)}"
        queue = CallQueue(
            "calls",
            initializer=initializer,
            initargs=initargs,
            timeout=timeout,
            suicide_timeout=suicide_timeout,
            max_items=max_items,
            policy=policy,
            block_timeout=block_timeout,
            deadline=deadline,
        )
        pool = ThreadPool(
            self._thread_name_prefix,
            0,
            heartbeat_map=heartbeat_map,
            min_threads=0,
            max_threads=max_workers,
            idle_timeout=idle_timeout,
            worker_names="{name}_{index}",
        )
        pool.add_work_queue(queue)
        pool.start()
        with _registry_lock:
            _owned_pools.add(pool)
        self._setup(pool, queue, owned=True, made_queue=True)
        # Collected without shutdown(): as shutdown(wait=False) (ThreadPoolExecutor's too).
        weakref.finalize(self, _wind_down, pool, wait=False)

    @classmethod
    def on_pool(cls, pool: ThreadPool, queue: CallQueue | str | None = None) -> Executor:
        """An executor whose calls go to ``queue`` on ``pool`` (see ThreadPool.executor)."""
        if queue is not None and not isinstance(queue, (CallQueue, str)):
            raise TypeError(f"executor() takes a CallQueue, a queue name or None, got {queue!r}")
        made = not isinstance(queue, CallQueue)
        if not isinstance(queue, CallQueue):
            queue = CallQueue(queue or "calls")
        if queue.pool is None:
            pool.add_work_queue(queue)
        elif queue.pool is not pool:
            raise ValueError(f"{queue!r} is attached to another pool ({queue.pool!r})")
        self = cls.__new__(cls)
        self._max_workers = pool.max_threads or pool.num_threads
        self._thread_name_prefix = pool.name
        self._setup(pool, queue, owned=False, made_queue=made)
        return self

    def _setup(self, pool: ThreadPool, queue: CallQueue, *, owned: bool, made_queue: bool) -> None:
        self._pool = pool
        self._queue = queue
        self._owned = owned
        self._made_queue = made_queue
        self._shutdown = False

    # --- ThreadPoolExecutor's API ----------------------------------------------------------

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Schedule ``fn(*args, **kwargs)``; return its Future. RuntimeError after
        shutdown, BrokenThreadPool once broken, QueueFull from a full bounded queue."""
        return self._submit(fn, args, kwargs, None)  # type: ignore[return-value]

    def submit_within(
        self, deadline: float, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> Future[T]:
        """submit(), with a deadline: if no worker has started the call ``deadline``
        seconds from now, it is not run and its future raises DeadlineExpired."""
        return self._submit(fn, args, kwargs, deadline)  # type: ignore[return-value]

    def _submit(
        self,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: Any,
        deadline: float | None,
        offer: bool = False,
    ) -> Future[T] | None:
        """submit(); with ``offer``, None instead of waiting or running the call when a
        bounded queue is full."""
        queue = self._queue
        if queue.broken is not None:
            raise BrokenThreadPool(queue.broken)
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        if _interpreter_exiting:
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")
        future: Future[T] = CallFuture()
        call = _Call(future, fn, args, kwargs)
        if offer:
            if not queue.offer(call, deadline=deadline):
                return None
        else:
            queue.queue(call, deadline=deadline)
        if self._closing() and queue.dequeue(call):
            # shutdown() raced with us and the call is still queued: take it back
            raise RuntimeError("cannot schedule new futures after shutdown")
        return future

    def _closing(self) -> bool:
        """Whether shutdown() or the interpreter's exit has begun (read again after a
        submit queued its call: either may have come in between)."""
        return self._shutdown or _interpreter_exiting

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No more calls; with ``cancel_futures`` the queued ones are cancelled; with
        ``wait``, return once the queued calls have run (and an executor's own threads
        have exited)."""
        self._shutdown = True
        queue = self._queue
        if cancel_futures:
            for call in queue.clear():
                call.future.cancel()
        if self._owned:
            _wind_down(self._pool, wait=wait)
            return
        if wait and self._pool.running:
            self._pool.drain(queue)
        if self._made_queue and wait and queue.pool is not None:
            self._pool.remove_work_queue(queue)

    # --- beyond it -----------------------------------------------------------------------

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``await executor.run(fn, *args)``: submit without blocking the event loop and
        wait for the result. A full bounded queue is waited on (``block``), or handled by
        its policy, in a thread of asyncio's default executor, never in the loop.
        Cancelling the awaiting task cancels the call if it has not started."""
        queue = self._queue
        waits = queue.max_items is not None and queue.policy in ("block", "caller_runs")
        future = self._submit(fn, args, kwargs, None, offer=waits)
        if future is None:  # full: wait for room, or run it, off the loop
            future = await asyncio.to_thread(self._submit, fn, args, kwargs, None)
        assert future is not None
        return await asyncio.wrap_future(future)

    @property
    def pool(self) -> ThreadPool:
        """The ThreadPool running the calls."""
        return self._pool

    @property
    def queue(self) -> CallQueue:
        """The queue of calls."""
        return self._queue

    @property
    def _threads(self) -> set[threading.Thread]:
        """The worker threads (ThreadPoolExecutor's attribute, which tests read)."""
        return set(self._pool.worker_threads())

    @property
    def _broken(self) -> str | bool:
        return self._queue.broken or False

    def __repr__(self) -> str:
        state = "shut down" if self._shutdown else "running"
        return (
            f"<threadpool.Executor {self._thread_name_prefix!r} {state}, "
            f"max_workers {self._max_workers}>"
        )
