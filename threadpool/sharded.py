"""``ShardedWorkQueue``: items by key, one at a time per key (Ceph's ``ShardedOpWQ``).

Ceph's OSD queues the ops of a placement group so that they run in order, one
at a time, while ops of different groups run in parallel, on a
``ShardedThreadPool`` whose shards each have their own lock. The same here, as
a queue of an ordinary ``ThreadPool``:

* ``queue(key, item)``: items of one key are processed one at a time, in the
  order they were queued; items of different keys in parallel;
* a key belongs to shard ``hash(key) % num_shards``; each shard has its own
  lock (a ``lockdep.Mutex`` named ``ShardedWorkQueue::<name>::shard<i>``), so
  producers of different shards never meet, and ``queue()`` never takes the
  pool lock (bar waking an idle worker, or on the locked paths of a
  free-threaded build, see ``freethreading``);
* a shard holds, under its lock: the items waiting per key, the keys with an
  item in flight, and the *ready* keys (items waiting, none in flight), oldest
  first. A worker takes the first ready key's next item, marks the key in
  flight, and after the item's finish step lets the key go: ready again if
  items wait for it. Shards are visited round-robin.

It is a work queue like the others: pause, drain, stop and statistics of the
pool cover every shard, ``clear()`` empties them all, ``stats()`` has a
``shards`` list. ``process(item, handle)`` and ``finish(item)`` as for the
other queues. ``key=`` (a callable of the item) lets ``queue_item(item)``
find the key itself. The number of shards is fixed; items take no deadline
and the queue no bound.

Locks: the pool lock, then a shard's lock (never two shards' locks at once);
``queue()`` takes only its shard's.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

import lockdep

from .heartbeat import TPHandle
from .queue_base import (
    DEFAULT_TIMEOUT,
    NOTHING,
    BaseWorkQueue,
    FinishFn,
    ProcessFn,
    check_callable,
    run_finish,
)


class _Shard:
    """One shard: its lock and, under it, the items waiting per key, the keys in flight,
    the ready keys, and a count of the items waiting."""

    __slots__ = ("busy", "count", "index", "lock", "pending", "processed", "ready")

    def __init__(self, queue: str, index: int) -> None:
        self.index = index
        self.lock = lockdep.Mutex(f"ShardedWorkQueue::{queue}::shard{index}")
        self.pending: dict[Hashable, deque[Any]] = {}
        self.busy: set[Hashable] = set()
        self.ready: deque[Hashable] = deque()
        self.count = 0
        self.processed = 0  # pool lock

    def release(self, key: Hashable) -> None:
        """The key's item in flight is done (shard lock held): it is ready again if more
        of its items wait."""
        self.busy.discard(key)
        if key in self.pending:
            self.ready.append(key)


class ShardedWorkQueue(BaseWorkQueue):
    """Per-key ordered items over shards with their own locks; see the module docstring.

    ``ShardedWorkQueue(name, num_shards, process, finish=None, *, key=None,
    timeout=60, suicide_timeout=0, histograms=False)``.
    """

    kind = "sharded"

    __slots__ = ("_fin", "_key", "_next", "_proc", "_shards")

    def __init__(
        self,
        name: str,
        num_shards: int,
        process: ProcessFn,
        finish: FinishFn | None = None,
        *,
        key: Callable[[Any], Hashable] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        suicide_timeout: float = 0.0,
        histograms: bool = False,
    ) -> None:
        super().__init__(
            name, timeout=timeout, suicide_timeout=suicide_timeout, histograms=histograms
        )
        if isinstance(num_shards, bool) or not isinstance(num_shards, int):
            raise TypeError(f"num_shards must be an int >= 1, got {num_shards!r}")
        if num_shards < 1:
            raise ValueError(f"num_shards must be an int >= 1, got {num_shards!r}")
        if process is None:
            raise TypeError(f"ShardedWorkQueue {name!r} needs process=callable(item, handle)")
        self._proc: ProcessFn = check_callable("process", "(item, handle)", process)
        self._fin: FinishFn | None = check_callable("finish", "(item)", finish)
        self._key = check_callable("key", "(item)", key)
        self._shards = [_Shard(self.name, i) for i in range(num_shards)]
        self._next = 0  # the shard a worker looks at first (pool lock)

    @property
    def num_shards(self) -> int:
        return len(self._shards)

    def shard_of(self, key: Hashable) -> int:
        """The index of the shard ``key`` belongs to."""
        return hash(key) % len(self._shards)

    # --- producers ----------------------------------------------------------------------

    def queue(self, key: Hashable, item: Any) -> None:
        """Queue ``item`` behind the items of ``key``; a sleeping worker is woken for it."""
        shard = self._shards[hash(key) % len(self._shards)]
        with shard.lock:
            waiting = shard.pending.get(key)
            if waiting is None:
                shard.pending[key] = waiting = deque()
            waiting.append(item)
            shard.count += 1
            if len(waiting) == 1 and key not in shard.busy:
                shard.ready.append(key)
        st = self._state
        if st is not None:
            if st.locked_paths:
                with st.locked():
                    st.item_queued_locked()
            elif st.idle or st.can_grow:
                st.item_queued()

    def queue_item(self, item: Any) -> None:
        """queue(key(item), item), with the ``key`` callable the queue was made with."""
        if self._key is None:
            raise TypeError(f"{self!r} was made without key=: use queue(key, item)")
        self.queue(self._key(item), item)

    # --- the protocol (pool lock held, but process_unit) ------------------------------------

    def dequeue_unit(self) -> Any:
        shards = self._shards
        n = len(shards)
        start = self._next
        for step in range(n):
            shard = shards[(start + step) % n]
            if not shard.ready:  # a hint; looked at again with the lock
                continue
            with shard.lock:
                if not shard.ready:
                    continue
                key = shard.ready.popleft()
                waiting = shard.pending[key]
                item = waiting.popleft()
                if not waiting:
                    del shard.pending[key]
                shard.busy.add(key)
                shard.count -= 1
            self._next = (start + step + 1) % n
            return (shard, key, item)
        return NOTHING

    def process_unit(self, unit: Any, handle: TPHandle) -> None:
        self._proc(unit[2], handle)

    def finish_unit(self, unit: Any, error: BaseException | None) -> None:
        shard, key, item = unit
        try:
            fin = self._fin
            if fin is not None:
                run_finish(self, fin, item, error)
        finally:
            with shard.lock:
                shard.release(key)
            shard.processed += 1

    def has_work(self) -> bool:
        return any(shard.ready for shard in self._shards)

    def busy(self) -> bool:
        """Items wait behind a key in flight (not ready, yet not done)."""
        return any(shard.pending for shard in self._shards)

    def clear(self) -> list[Any]:
        """Remove and return every queued item, key by key (not those in flight)."""
        return self._with_lock(self._clear_shards)  # type: ignore[no-any-return]

    def _clear_shards(self) -> list[Any]:
        out: list[Any] = []
        for shard in self._shards:
            with shard.lock:
                for waiting in shard.pending.values():
                    out.extend(waiting)
                shard.pending.clear()
                shard.ready.clear()
                shard.count = 0
        return out

    def _size(self) -> int | None:
        return sum(shard.count for shard in self._shards)

    def snapshot(self) -> dict[str, Any]:
        out = super().snapshot()
        out["shards"] = [
            {
                "items": shard.count,
                "keys": len(shard.pending),
                "in_flight": len(shard.busy),
                "processed": shard.processed,
            }
            for shard in self._shards
        ]
        return out
