"""The protocol between a ThreadPool and its work queues (Ceph's ``WorkQueue_``).

A worker drives a queue through three steps (Ceph's ``_void_dequeue``,
``_void_process`` and ``_void_process_finish``) and one accounting call:

1. ``dequeue_unit()`` — with the pool lock held: take the next unit of work
   and return it, or return ``NOTHING``;
2. ``process_unit(unit, handle)`` — without the pool lock, in parallel with
   other workers: do the work. It may raise: the pool logs the traceback,
   counts a failure, and goes on;
3. ``finish_unit(unit, error)`` — with the pool lock held, so one at a time
   per pool: complete the unit. ``error`` is what step 2 raised, or None; the
   ready-made queues show it to finish callables as ``queue.error``;
4. ``account(unit, failed, seconds)`` — with the pool lock held: the counters.

The pool also asks ``has_work()`` and ``busy()`` (under the lock), and tells
a queue when it is attached to and detached from a pool (``attach(state)``,
``detach()``). Those are the whole of what the pool and its workers know of
a queue; what a queue knows of its pool is the pool's ``PoolState``
(``state.py``): the lock, and the calls that wake a worker. A subclass of
``BaseWorkQueue`` with storage of its own implements steps 1-3 plus
``has_work`` and ``clear``. Deadlines add an expiry step the workers run
when ``PoolState.deadline_hint`` says one is due: ``take_expired`` (lock
held), ``hand_expired`` (without it), ``finish_expired`` (with it).

The ready-made queues (``queues.py``, ``pointer.py``) keep their items in
the ready-made storage (``storage.py``: a deque, with an optional bound and
deadlines), or in storage of their own behind hooks a subclass may
override, as in Ceph: ``_enqueue``, ``_dequeue``, ``_empty``, ``_clear``
(and ``_size`` for statistics). The hooks run with the pool lock held. On the
ready-made storage ``queue()`` does not take the pool lock at all: appending
to a deque is atomic under the GIL (this relies on the GIL; see
``freethreading`` for what a pool does without it) and workers only remove
items with the lock held; the pool is poked only when a worker sleeps idle.
With storage of its own, ``queue()`` takes the pool lock around
``_enqueue`` (Ceph's behaviour).

Counters. Each queue keeps, under the pool lock: ``processed`` (items whose
process and finish steps have run, whatever their outcome; a batch counts its
size), ``failed`` (those of them where either step raised), ``in_flight``
(units dequeued and not yet finished), and the seconds spent in process
steps. With ``histograms=True`` it also keeps a histogram of process-step
durations (per unit: one item, or one batch) and, for the ready-made storage,
of queue waits (per item, from ``queue()`` to dequeue). That costs a clock
reading and a tuple per queued item and two bisections per unit: on no-op
items, about a third of the throughput (``make bench`` measures it), nothing
for items that do real work; hence it is off by default. ``timeout`` and
``suicide_timeout`` may be changed at any time; they apply from the next unit
a worker takes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from .heartbeat import TPHandle, check_seconds, limits_of
from .histogram import Histogram

if TYPE_CHECKING:
    from .pool import ThreadPool
    from .state import PoolState


class _Nothing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOTHING"


NOTHING: Any = _Nothing()
"""What ``dequeue_unit`` returns when there is no work."""

DEFAULT_TIMEOUT = 60.0

ProcessFn = Callable[[Any, TPHandle], object]
FinishFn = Callable[[Any], object]


def check_name(what: str, name: object) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"{what} name must be a non-empty str, got {name!r}")
    return name


def check_callable(what: str, signature: str, fn: object) -> Any:
    if fn is not None and not callable(fn):
        raise TypeError(f"{what} must be a callable taking {signature}, or None; got {fn!r}")
    return fn


def resolve_handlers(
    queue: BaseWorkQueue, owner: type, process: object, finish: object, unit: str
) -> tuple[ProcessFn, FinishFn | None]:
    """The callables the queue will call: the arguments, or the subclass's overrides."""
    cls = type(queue)
    check_callable("process", f"({unit}, handle)", process)
    check_callable("finish", f"({unit})", finish)
    overridden = getattr(cls, "_process") is not getattr(owner, "_process")  # noqa: B009
    if process is None:
        if not overridden:
            raise TypeError(
                f"{cls.__name__} {queue.name!r} needs process=callable({unit}, handle), "
                f"or a subclass overriding _process"
            )
        proc = getattr(queue, "_process")  # noqa: B009
    elif overridden:
        raise TypeError(
            f"{cls.__name__} {queue.name!r}: give process= or override _process, not both"
        )
    else:
        proc = process
    if finish is not None:
        return proc, finish  # type: ignore[return-value]
    if getattr(cls, "_process_finish") is not getattr(owner, "_process_finish"):  # noqa: B009
        return proc, getattr(queue, "_process_finish")  # noqa: B009
    return proc, None


def run_finish(queue: BaseWorkQueue, fin: FinishFn, unit: Any, error: BaseException | None) -> None:
    queue.error = error
    try:
        fin(unit)
    finally:
        queue.error = None


def check_reference(queue: BaseWorkQueue, item: object) -> None:
    if item is None:
        raise TypeError(f"{queue!r} queues object references; None cannot be queued")


class BaseWorkQueue:
    """What every work queue shares: name, timeouts, pool membership and counters.

    Not used directly: take one of ``BatchWorkQueue``, ``WorkQueueVal``,
    ``WorkQueue`` or ``PointerWQ``, or subclass this and implement
    ``dequeue_unit``, ``process_unit``, ``finish_unit``, ``has_work`` and
    ``clear``.
    """

    __slots__ = (
        "_busy_seconds",
        "_duration",
        "_failed",
        "_name",
        "_processed",
        "_state",
        "_suicide_timeout",
        "_timeout",
        "_wait",
        "error",
        "limits",
    )

    kind: ClassVar[str] = "base"
    batch: ClassVar[bool] = False  # units are lists of items
    # The storage hooks; a subclass overriding any of them gets the locked queue().
    _storage_hooks: ClassVar[tuple[str, ...]] = ("_enqueue", "_dequeue", "_empty", "_clear")

    def __init__(
        self,
        name: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        suicide_timeout: float = 0.0,
        histograms: bool = False,
    ) -> None:
        self._name = check_name(type(self).__name__, name)
        self._timeout = check_seconds("timeout", timeout)
        self._suicide_timeout = check_seconds("suicide_timeout", suicide_timeout)
        self.limits = limits_of(self._timeout, self._suicide_timeout)
        if not isinstance(histograms, bool):
            raise TypeError(f"histograms must be True or False, got {histograms!r}")
        self._state: PoolState | None = None
        self.error: BaseException | None = None
        self._processed = 0
        self._failed = 0
        self._busy_seconds = 0.0
        self._duration: Histogram | None = Histogram() if histograms else None
        self._wait: Histogram | None = None  # queue waits: the ready-made storage keeps them

    # --- identity and settings -----------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def pool(self) -> ThreadPool | None:
        """The pool this queue is attached to, or None."""
        st = self._state
        return st.pool if st is not None else None  # type: ignore[return-value]

    @property
    def timeout(self) -> float:
        """Grace, in seconds, for one unit of this queue (0: none). Settable at run time."""
        return self._timeout

    @timeout.setter
    def timeout(self, value: float) -> None:
        self._timeout = check_seconds("timeout", value)
        self.limits = limits_of(self._timeout, self._suicide_timeout)

    @property
    def suicide_timeout(self) -> float:
        """Suicide grace, in seconds, for one unit (0: none). Settable at run time."""
        return self._suicide_timeout

    @suicide_timeout.setter
    def suicide_timeout(self, value: float) -> None:
        self._suicide_timeout = check_seconds("suicide_timeout", value)
        self.limits = limits_of(self._timeout, self._suicide_timeout)

    def set_timeout(self, seconds: float) -> None:
        """Ceph's name for ``timeout = seconds``."""
        self.timeout = seconds

    def set_suicide_timeout(self, seconds: float) -> None:
        """Ceph's name for ``suicide_timeout = seconds``."""
        self.suicide_timeout = seconds

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name!r}>"

    # --- the protocol, the pool's side (see the module docstring) ---------------------
    # ``limits`` is ``heartbeat.limits_of(timeout, suicide_timeout)``, for the worker's
    # heartbeat reset (``HeartbeatHandle.reset_with``).

    def attach(self, state: PoolState) -> None:
        """Called by ThreadPool.add_work_queue (pool lock held). ValueError if attached."""
        if self._state is not None:
            where = "this pool" if self._state is state else repr(self._state.pool)
            raise ValueError(f"{self!r} is already attached to {where}")
        self._state = state

    def detach(self) -> None:
        """Called by ThreadPool.remove_work_queue (pool lock held)."""
        self._state = None

    def can_detach(self) -> bool:
        """Whether remove_work_queue may detach this queue now (pool lock held)."""
        return True

    def dequeue_unit(self) -> Any:
        raise NotImplementedError

    def process_unit(self, unit: Any, handle: TPHandle) -> None:
        raise NotImplementedError

    def finish_unit(self, unit: Any, error: BaseException | None) -> None:
        raise NotImplementedError

    def account(self, unit: Any, failed: bool, seconds: float) -> None:
        """Count a unit whose process and finish steps ran (pool lock held)."""
        n = len(unit) if self.batch else 1
        self._processed += n
        if failed:
            self._failed += n
        self._busy_seconds += seconds
        if self._duration is not None:
            self._duration.observe(seconds)

    def has_work(self) -> bool:
        """Whether a dequeue would find something (pool lock held, or a racy hint)."""
        raise NotImplementedError

    def busy(self) -> bool:
        """Whether work of this queue is out beyond the units workers hold (lock held)."""
        return False

    def take_expired(self, now: float) -> list[Any]:
        """Items whose deadline passed by ``now`` (monotonic), taken off the queue and
        counted as expired (pool lock held). The worker then calls hand_expired (without
        the lock) and finish_expired (with it). None here: deadlines are the ready-made
        storage's."""
        return []

    def next_deadline(self) -> float:
        """When take_expired will next have something (pool lock held); inf: never."""
        return float("inf")

    def hand_expired(self, items: list[Any]) -> None:
        """Hand items take_expired returned to the queue's on_expire (without the lock)."""

    def finish_expired(self, items: list[Any]) -> None:
        """Run the finish steps of expired items (pool lock held)."""

    def clear(self) -> list[Any]:
        """Remove and return every queued item (not those already taken by a worker)."""
        raise NotImplementedError

    def size(self) -> int | None:
        """How many items are queued; None when the storage cannot tell (pool lock held,
        or a racy hint)."""
        return self._size()

    def _size(self) -> int | None:
        """The storage hook behind ``size()``."""
        return None

    # --- using the pool --------------------------------------------------------------

    def _attached(self, what: str) -> ThreadPool:
        pool = self.pool
        if pool is None:
            raise RuntimeError(f"{what}: {self!r} is not attached to a pool (add_work_queue it)")
        return pool

    def _with_lock(self, fn: Callable[..., Any], *args: Any) -> Any:
        """fn(*args) with the pool lock held (already held, in a worker's finish step, is fine)."""
        st = self._state
        if st is None:
            return fn(*args)
        with st.locked():
            return fn(*args)

    def _queue_locked(self, enqueue: Callable[[Any], object], item: Any) -> Any:
        """Ceph's queue(): enqueue with the pool lock held, then wake a worker."""
        st = self._state
        if st is None:
            return enqueue(item)
        with st.locked():
            result = enqueue(item)
            st.item_queued_locked()
        return result

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until this queue is empty and none of its items is processing.

        Returns False if ``timeout`` expired first. See ``ThreadPool.drain``.
        """
        return self._attached("drain()").drain(self, timeout=timeout)

    def stats(self) -> dict[str, Any]:
        """This queue's counters (the pool lock is taken if attached); see ThreadPool.stats."""
        return self._with_lock(self.snapshot)  # type: ignore[no-any-return]

    def snapshot(self) -> dict[str, Any]:
        """The counters as ``stats()`` returns them (pool lock held, if attached)."""
        st = self._state
        return {
            "kind": self.kind,
            "items": self._size(),
            "in_flight": st.in_flight(self) if st is not None else 0,
            "processed": self._processed,
            "failed": self._failed,
            "busy_seconds": self._busy_seconds,
            "timeout": self._timeout,
            "suicide_timeout": self._suicide_timeout,
            "item_duration_seconds": self._duration.snapshot() if self._duration else None,
            "queue_wait_seconds": self._wait.snapshot() if self._wait else None,
        }
