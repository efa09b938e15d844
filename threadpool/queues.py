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
``queue_base`` for the protocol and the counters, ``storage`` for the
ready-made storage and the lock-free ``queue()``.

On the ready-made storage every queue also takes (keyword arguments, all
settable later but ``deadlines``):

* ``max_items`` (None: unbounded) and ``policy`` (``reject``, ``block``,
  ``caller_runs``, ``drop_oldest``; see ``limits``), ``block_timeout``
  (seconds the ``block`` policy waits; None: no limit), ``on_drop`` (given
  each item ``drop_oldest`` drops);
* ``deadline`` (seconds: the deadline of items queued without one; None:
  none), ``deadlines`` (True: items may carry a deadline though there is no
  default one), ``on_expire`` (given each item whose deadline passed before a
  worker took it; its finish step then runs with ``DeadlineExpired`` as
  ``queue.error``); ``queue(item, deadline=seconds)`` gives one item its own.

``queue()`` is thread-safe and never blocks on a worker (the ``block``
policy of a full queue waits for room; ``caller_runs`` runs the item).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from .heartbeat import TPHandle
from .queue_base import (
    NOTHING,
    FinishFn,
    ProcessFn,
    resolve_handlers,
    run_finish,
)
from .storage import Options, Storage

if TYPE_CHECKING:
    from typing import Unpack


class WorkQueueVal(Storage):
    """Items by value (Ceph's ``WorkQueueVal``).

    Dequeue moves an item to ``to_process``; a process step pops one from
    there and, done, pushes it to ``to_finish``; a finish step pops from
    ``to_finish``. So finish steps run one at a time, in the order items
    complete (which, with several workers, need not be the order they started).
    Any value may be queued, None included.
    """

    __slots__ = (
        "_to_finish",
        "_to_process",
    )

    kind = "value"
    _storage_hooks = ("_enqueue", "_enqueue_front", "_dequeue", "_empty", "_clear")

    def __init__(
        self,
        name: str,
        process: ProcessFn | None = None,
        finish: FinishFn | None = None,
        **options: Unpack[Options],
    ) -> None:
        super().__init__(name, owner=WorkQueueVal, **options)
        self._proc, self._fin = resolve_handlers(self, WorkQueueVal, process, finish, "item")
        self._to_process: deque[Any] = deque()
        self._to_finish: deque[tuple[Any, BaseException | None]] = deque()

    def queue_front(self, item: Any, *, deadline: float | None = None) -> None:
        """Queue a value at the front (next to be taken)."""
        self._put(item, deadline, front=True)

    def clear(self) -> list[Any]:
        """Remove and return every queued item (not those already taken by a worker)."""
        return self._with_lock(self._clear_storage)  # type: ignore[no-any-return]

    # storage hooks (pool lock held)
    def _enqueue(self, item: Any) -> None:
        self._items.append(item)

    def _enqueue_front(self, item: Any) -> None:
        self._items.appendleft(item)

    def _empty(self) -> bool:
        return not self._items

    def _dequeue(self) -> Any:
        return self._items.popleft()

    def _clear(self) -> list[Any]:
        return self._take_all()

    # processing hooks
    def _process(self, item: Any, handle: TPHandle) -> None:
        raise NotImplementedError

    def _process_finish(self, item: Any) -> None:
        pass

    # protocol
    def dequeue_unit(self) -> Any:
        items = self._items
        if self._plain:
            if not items:
                return NOTHING
            u = items.popleft()
        elif self._counted:  # bounded, lock-free: the item's place is free again
            if not items:
                return NOTHING
            u = items.popleft()
            if self._debt:
                self._place_freed()
            else:
                self._tokens.append(None)  # type: ignore[union-attr]
                if self._space_waiters:  # after the append: see storage's docstring
                    self._wake_space()
        elif self._peek_in_order:  # in order, not expired: take_next's usual case
            u = items.take(self._state.now)  # type: ignore[union-attr]
            if u is NOTHING:
                u = self.take_next()
                if u is NOTHING:
                    return NOTHING
        elif self._fast:
            u = self.take_next()
            if u is NOTHING:
                return NOTHING
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
        return self._live() if self._fast else not self._empty()

    def _clear_storage(self) -> list[Any]:
        return self._take_all() if self._fast else list(self._clear() or ())


class _RefQueue(Storage):
    """What WorkQueue and BatchWorkQueue share: take back a queued item, clear."""

    __slots__ = ()

    def dequeue(self, item: Any) -> bool:
        """Take back a queued item (the first occurrence, by identity); whether it was queued."""
        return self._with_lock(self._remove, item)  # type: ignore[no-any-return]

    def clear(self) -> list[Any]:
        """Remove and return every queued item (not those already taken by a worker)."""
        return self._with_lock(self._clear_storage)  # type: ignore[no-any-return]

    def _enqueue(self, item: Any) -> bool:
        self._items.append(item)
        return True

    def _remove(self, item: Any) -> bool:
        return self._remove_first(item)

    def _empty(self) -> bool:
        return not self._items

    def _clear(self) -> list[Any]:
        return self._take_all()

    def has_work(self) -> bool:
        return self._live() if self._fast else not self._empty()

    def _clear_storage(self) -> list[Any]:
        return self._take_all() if self._fast else list(self._clear() or ())

    def finish_unit(self, unit: Any, error: BaseException | None) -> None:
        fin = self._fin
        if fin is not None:
            run_finish(self, fin, unit, error)

    def process_unit(self, unit: Any, handle: TPHandle) -> None:
        self._proc(unit, handle)


class WorkQueue(_RefQueue):
    """Object references (Ceph's ``WorkQueue``); ``dequeue(item)`` takes one back."""

    __slots__ = ()

    kind = "workqueue"
    refs = True
    _storage_hooks = ("_enqueue", "_dequeue", "_remove", "_empty", "_clear")

    def __init__(
        self,
        name: str,
        process: ProcessFn | None = None,
        finish: FinishFn | None = None,
        **options: Unpack[Options],
    ) -> None:
        super().__init__(name, owner=WorkQueue, **options)
        self._proc, self._fin = resolve_handlers(self, WorkQueue, process, finish, "item")

    def _dequeue(self) -> Any:
        """The next item, or None if there is none."""
        return self._items.popleft() if self._items else None

    def _process(self, item: Any, handle: TPHandle) -> None:
        raise NotImplementedError

    def _process_finish(self, item: Any) -> None:
        pass

    def dequeue_unit(self) -> Any:
        items = self._items
        if self._plain:
            return items.popleft() if items else NOTHING
        if self._counted:  # bounded, lock-free: the item's place is free again
            if not items:
                return NOTHING
            item = items.popleft()
            self._place_freed()
            return item
        if self._fast:
            if self._peek_in_order:  # in order, not expired: take_next's usual case
                item = items.take(self._state.now)  # type: ignore[union-attr]
                if item is not NOTHING:
                    return item
            return self.take_next()
        item = self._dequeue()
        return NOTHING if item is None else item


class BatchWorkQueue(_RefQueue):
    """Items processed in lists of up to ``batch_size`` (Ceph's ``BatchWorkQueue``).

    ``process(items, handle)`` and ``finish(items)`` receive the list. A
    subclass's ``_dequeue(max_items)`` may choose what goes in a batch. The
    counters count items; the duration histogram times whole batches. Expired
    items are finished as one list per expiry step.
    """

    __slots__ = ("_batch_size",)

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
        **options: Unpack[Options],
    ) -> None:
        super().__init__(name, owner=BatchWorkQueue, **options)
        self.batch_size = batch_size
        self._proc, self._fin = resolve_handlers(self, BatchWorkQueue, process, finish, "items")

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

    def _dequeue(self, max_items: int) -> list[Any]:
        """Up to max_items items, oldest first (an empty list when there are none)."""
        items = self._items
        return [items.popleft() for _ in range(min(max_items, len(items)))]

    def _process(self, items: list[Any], handle: TPHandle) -> None:
        raise NotImplementedError

    def _process_finish(self, items: list[Any]) -> None:
        pass

    def dequeue_unit(self) -> Any:
        if self._plain:
            items = self._items
            if not items:
                return NOTHING
            popleft = items.popleft
            return [popleft() for _ in range(min(self._batch_size, len(items)))]
        if self._fast:
            batch = []
            take = self.take_next
            for _ in range(self._batch_size):
                item = take()
                if item is NOTHING:
                    break
                batch.append(item)
            return batch or NOTHING
        batch = self._dequeue(self._batch_size)
        return list(batch) if batch else NOTHING
