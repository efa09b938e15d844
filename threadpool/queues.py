"""Three of the four ready-made work queues (Ceph's ``WorkQueue_`` family).

* ``BatchWorkQueue``: process and finish get a list of up to ``batch_size`` items.
* ``WorkQueueVal``: items by value; finish steps run in the order items complete.
* ``WorkQueue``: object references; a queued item can be taken back (``dequeue``).

The fourth, ``PointerWQ``, is in ``pointer.py``.

Each takes ``process`` (called as ``process(item, handle)``, or
``process(items, handle)`` for a batch, on a worker, without the pool lock)
and an optional ``finish`` (``finish(item)``, with the pool lock held, one at
a time per pool), or a subclass overrides ``_process`` / ``_process_finish``
instead (Ceph's way). During a finish step ``queue.error`` is the exception
the process step raised, or None. Subclasses may also replace the storage
(``_enqueue``, ``_dequeue``, ``_empty``, ``_clear``, ``_size``); those hooks
run with the pool lock held, and ``_clear`` must return the items it removed
so that ``clear()`` and ``ThreadPool.stop`` can hand them back. See
``queue_base`` for the protocol, the counters and the lock-free ``queue()``.

Every ``queue()`` is thread-safe and never blocks on a worker.
"""

from __future__ import annotations

from collections import deque
from time import monotonic
from typing import Any

from .heartbeat import TPHandle
from .queue_base import (
    DEFAULT_TIMEOUT,
    NOTHING,
    BaseWorkQueue,
    FinishFn,
    ProcessFn,
    check_reference,
    resolve_handlers,
    run_finish,
)


class WorkQueueVal(BaseWorkQueue):
    """Items by value (Ceph's ``WorkQueueVal``).

    Dequeue moves an item to ``to_process``; a process step pops one from
    there and, done, pushes it to ``to_finish``; a finish step pops from
    ``to_finish``. So finish steps run one at a time, in the order items
    complete (which, with several workers, need not be the order they started).
    Any value may be queued, None included.
    """

    kind = "value"
    _storage_hooks = ("_enqueue", "_enqueue_front", "_dequeue", "_empty", "_clear")

    def __init__(
        self,
        name: str,
        process: ProcessFn | None = None,
        finish: FinishFn | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        suicide_timeout: float = 0.0,
        histograms: bool = False,
    ) -> None:
        super().__init__(
            name, timeout=timeout, suicide_timeout=suicide_timeout, histograms=histograms
        )
        self._proc, self._fin = resolve_handlers(self, WorkQueueVal, process, finish, "item")
        self._to_process: deque[Any] = deque()
        self._to_finish: deque[tuple[Any, BaseException | None]] = deque()
        self._use_storage_of(WorkQueueVal)

    def queue(self, item: Any) -> None:
        """Queue a value at the back; a sleeping worker is woken for it."""
        if self._lockfree:  # the hot path: no pool lock (see queue_base)
            if self._stamped:
                self._items.append((monotonic(), item))
            else:
                self._items.append(item)
            st = self._state
            if st is not None and (st.idle or st.can_grow):
                st.item_queued()
        else:
            self._queue_locked(self._enqueue, item)

    def queue_front(self, item: Any) -> None:
        """Queue a value at the front (next to be taken)."""
        if self._lockfree:
            self._push_front(item)
            self._kick()
        else:
            self._queue_locked(self._enqueue_front, item)

    def clear(self) -> list[Any]:
        """Remove and return every queued item (not those already taken by a worker)."""
        return self._with_lock(self._clear_storage)  # type: ignore[no-any-return]

    # storage hooks (pool lock held)
    def _enqueue(self, item: Any) -> None:
        self._push(item)

    def _enqueue_front(self, item: Any) -> None:
        self._push_front(item)

    def _empty(self) -> bool:
        return not self._items

    def _dequeue(self) -> Any:
        return self._pop()

    def _clear(self) -> list[Any]:
        return self._take_all()

    # processing hooks
    def _process(self, item: Any, handle: TPHandle) -> None:
        raise NotImplementedError

    def _process_finish(self, item: Any) -> None:
        pass

    # protocol
    def dequeue_unit(self) -> Any:
        if self._fast:
            items = self._items
            if not items:
                return NOTHING
            u = self._pop() if self._stamped else items.popleft()
        else:
            if self._empty():
                return NOTHING
            u = self._dequeue()
        self._to_process.append(u)
        return u

    def process_unit(self, unit: Any, handle: TPHandle) -> None:
        u = self._to_process.popleft()
        try:
            self._proc(u, handle)
        except BaseException as exc:
            self._to_finish.append((u, exc))
            raise
        self._to_finish.append((u, None))

    def finish_unit(self, unit: Any, error: BaseException | None) -> None:
        u, err = self._to_finish.popleft()
        fin = self._fin
        if fin is not None:
            run_finish(self, fin, u, err)

    def has_work(self) -> bool:
        return bool(self._items) if self._fast else not self._empty()

    def _clear_storage(self) -> list[Any]:
        return self._take_all() if self._fast else list(self._clear() or ())


class _RefQueue(BaseWorkQueue):
    """What WorkQueue and BatchWorkQueue share: take back a queued item, clear."""

    def dequeue(self, item: Any) -> bool:
        """Take back a queued item (the first occurrence, by identity); whether it was queued."""
        return self._with_lock(self._remove, item)  # type: ignore[no-any-return]

    def clear(self) -> list[Any]:
        """Remove and return every queued item (not those already taken by a worker)."""
        return self._with_lock(self._clear_storage)  # type: ignore[no-any-return]

    def _remove(self, item: Any) -> bool:
        return self._remove_first(item)

    def _empty(self) -> bool:
        return not self._items

    def _clear(self) -> list[Any]:
        return self._take_all()

    def has_work(self) -> bool:
        return bool(self._items) if self._fast else not self._empty()

    def _clear_storage(self) -> list[Any]:
        return self._take_all() if self._fast else list(self._clear() or ())


class WorkQueue(_RefQueue):
    """Object references (Ceph's ``WorkQueue``); ``dequeue(item)`` takes one back."""

    kind = "workqueue"
    _storage_hooks = ("_enqueue", "_dequeue", "_remove", "_empty", "_clear")

    def __init__(
        self,
        name: str,
        process: ProcessFn | None = None,
        finish: FinishFn | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        suicide_timeout: float = 0.0,
        histograms: bool = False,
    ) -> None:
        super().__init__(
            name, timeout=timeout, suicide_timeout=suicide_timeout, histograms=histograms
        )
        self._proc, self._fin = resolve_handlers(self, WorkQueue, process, finish, "item")
        self._use_storage_of(WorkQueue)

    def queue(self, item: Any) -> bool:
        """Queue a reference at the back; returns what ``_enqueue`` returned (True)."""
        check_reference(self, item)
        if self._lockfree:
            self._push(item)
            self._kick()
            return True
        return self._queue_locked(self._enqueue, item) is not False

    def _enqueue(self, item: Any) -> bool:
        self._push(item)
        return True

    def _dequeue(self) -> Any:
        """The next item, or None if there is none."""
        return self._pop() if self._items else None

    def _process(self, item: Any, handle: TPHandle) -> None:
        raise NotImplementedError

    def _process_finish(self, item: Any) -> None:
        pass

    def dequeue_unit(self) -> Any:
        if self._fast:
            items = self._items
            if not items:
                return NOTHING
            return self._pop() if self._stamped else items.popleft()
        item = self._dequeue()
        return NOTHING if item is None else item

    def process_unit(self, unit: Any, handle: TPHandle) -> None:
        self._proc(unit, handle)

    def finish_unit(self, unit: Any, error: BaseException | None) -> None:
        fin = self._fin
        if fin is not None:
            run_finish(self, fin, unit, error)


class BatchWorkQueue(_RefQueue):
    """Items processed in lists of up to ``batch_size`` (Ceph's ``BatchWorkQueue``).

    ``process(items, handle)`` and ``finish(items)`` receive the list. A
    subclass's ``_dequeue(max_items)`` may choose what goes in a batch. The
    counters count items; the duration histogram times whole batches.
    """

    kind = "batch"
    batch = True
    _storage_hooks = ("_enqueue", "_dequeue", "_remove", "_empty", "_clear")

    def __init__(
        self,
        name: str,
        process: ProcessFn | None = None,
        finish: FinishFn | None = None,
        *,
        batch_size: int = 64,
        timeout: float = DEFAULT_TIMEOUT,
        suicide_timeout: float = 0.0,
        histograms: bool = False,
    ) -> None:
        super().__init__(
            name, timeout=timeout, suicide_timeout=suicide_timeout, histograms=histograms
        )
        self.batch_size = batch_size
        self._proc, self._fin = resolve_handlers(self, BatchWorkQueue, process, finish, "items")
        self._use_storage_of(BatchWorkQueue)

    @property
    def batch_size(self) -> int:
        """The most items one batch takes. Settable at run time."""
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"batch_size must be an int >= 1, got {value!r}")
        if value < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {value!r}")
        self._batch_size = value

    def queue(self, item: Any) -> bool:
        """Queue an item at the back; returns what ``_enqueue`` returned (True)."""
        if self._lockfree:
            if self._stamped:
                self._items.append((monotonic(), item))
            else:
                self._items.append(item)
            st = self._state
            if st is not None and (st.idle or st.can_grow):
                st.item_queued()
            return True
        return self._queue_locked(self._enqueue, item) is not False

    def _enqueue(self, item: Any) -> bool:
        self._push(item)
        return True

    def _dequeue(self, max_items: int) -> list[Any]:
        """Up to max_items items, oldest first (an empty list when there are none)."""
        items = self._items
        return [self._pop() for _ in range(min(max_items, len(items)))]

    def _process(self, items: list[Any], handle: TPHandle) -> None:
        raise NotImplementedError

    def _process_finish(self, items: list[Any]) -> None:
        pass

    def dequeue_unit(self) -> Any:
        if self._fast:
            items = self._items
            if not items:
                return NOTHING
            n = min(self._batch_size, len(items))
            if self._stamped:
                pop = self._pop
                return [pop() for _ in range(n)]
            popleft = items.popleft
            return [popleft() for _ in range(n)]
        batch = self._dequeue(self._batch_size)
        return list(batch) if batch else NOTHING

    def process_unit(self, unit: Any, handle: TPHandle) -> None:
        self._proc(unit, handle)

    def finish_unit(self, unit: Any, error: BaseException | None) -> None:
        fin = self._fin
        if fin is not None:
            run_finish(self, fin, unit, error)
