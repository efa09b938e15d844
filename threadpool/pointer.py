"""``PointerWQ``: object references plus a processing count (Ceph's ``PointerWQ``).

The one queue whose storage is not meant to be replaced: it is the ready-made
storage (``storage.py``), so ``queue()`` takes no lock, and it takes the same
bound and deadline options as the others (``queues``). A subclass may
override ``dequeue_unit`` to hold items back (Ceph's ``_void_dequeue``), and
put them back later with ``requeue_front`` / ``requeue_back``. See
``queue_base`` for the protocol and ``queues`` for the handler conventions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .heartbeat import TPHandle
from .queue_base import (
    NOTHING,
    FinishFn,
    ProcessFn,
    check_reference,
    resolve_handlers,
    run_finish,
)
from .storage import Options, Storage

if TYPE_CHECKING:
    from typing import Unpack


class PointerWQ(Storage):
    """Object references plus a processing count (Ceph's ``PointerWQ``).

    ``processing`` counts items handed out by dequeue and not yet finished.
    ``requeue_front(item)`` / ``requeue_back(item)`` undo a dequeue: they
    count the item as no longer processing and queue it again (without a
    deadline, and past a full bound if need be). They are for items a
    subclass's ``dequeue_unit`` took and held back; a process step that wants
    its item retried calls ``queue(item)`` instead (its finish step then ends
    this round). Removing the queue from its pool while items process raises
    RuntimeError.
    """

    __slots__ = ("_processing",)

    kind = "pointer"
    refs = True
    _storage_hooks = ()

    def __init__(
        self,
        name: str,
        process: ProcessFn | None = None,
        finish: FinishFn | None = None,
        **options: Unpack[Options],
    ) -> None:
        super().__init__(name, owner=PointerWQ, **options)
        self._proc, self._fin = resolve_handlers(self, PointerWQ, process, finish, "item")
        self._processing = 0

    @property
    def processing(self) -> int:
        return self._processing

    def requeue_front(self, item: Any) -> None:
        """Undo a dequeue: the item is no longer processing and is queued first."""
        self._requeue(item, front=True)

    def requeue_back(self, item: Any) -> None:
        """Undo a dequeue: the item is no longer processing and is queued last."""
        self._requeue(item, front=False)

    def _requeue(self, item: Any, front: bool) -> None:
        check_reference(self, item)

        def requeue(item: Any) -> None:
            if self._processing <= 0:
                raise RuntimeError(
                    f"{self!r}: requeue of an item that was not dequeued (nothing is processing)"
                )
            self._processing -= 1
            self._put_back(item, front)

        self._queue_locked(requeue, item)

    def front(self) -> Any:
        """The next item to be taken, or None (a snapshot: a worker may take it at once)."""
        return self._peek()

    def empty(self) -> bool:
        return not self._live()

    def signal(self) -> None:
        """Wake a sleeping worker (for a subclass whose dequeue held items back)."""
        self._queue_locked(lambda _item: None, None)

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until this queue is empty and none of its items is processing."""
        # Without the lock: the deque first, then the count, which a worker raises before
        # it takes an item off the deque (so an item in hand is never missed).
        if self._lockfree and not self._items and self._processing == 0:
            return True
        return super().drain(timeout)

    def _process(self, item: Any, handle: TPHandle) -> None:
        raise NotImplementedError

    def _process_finish(self, item: Any) -> None:
        pass

    def dequeue_unit(self) -> Any:
        items = self._items
        if not items:
            return NOTHING
        self._processing += 1  # before the item leaves the deque: see drain()
        if self._plain:
            return items.popleft()
        if self._counted:  # bounded, lock-free: the item's place is free again
            item = items.popleft()
            self._place_freed()
            return item
        if self._peek_in_order:  # in order, not expired: take_next's usual case
            item = items.take(self._state.now)  # type: ignore[union-attr]
            if item is not NOTHING:
                return item
        item = self.take_next()
        if item is NOTHING:
            self._processing -= 1
        return item

    def process_unit(self, unit: Any, handle: TPHandle) -> None:
        self._proc(unit, handle)

    def finish_unit(self, unit: Any, error: BaseException | None) -> None:
        if self._processing <= 0:
            raise RuntimeError(f"{self!r}: finish with nothing processing (a requeue too many?)")
        self._processing -= 1
        fin = self._fin
        if fin is not None:
            run_finish(self, fin, unit, error)

    def has_work(self) -> bool:
        return self._live()

    def busy(self) -> bool:
        return self._processing > 0 or bool(self._expiring)

    def can_detach(self) -> bool:
        return self._processing == 0

    def clear(self) -> list[Any]:
        """Remove and return every queued item (not those already taken by a worker)."""
        return self._with_lock(self._take_all)  # type: ignore[no-any-return]
