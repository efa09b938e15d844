"""``Storage``: the ready-made storage of the work queues, with its bound and deadlines.

A deque of entries, oldest first (in a queue that takes deadlines, a
``Timeline``: a deque with a hot path for them, see timeline.py). What an entry
is depends on the queue, and is fixed when it is made:

* the item itself: the plain case;
* ``(since, item)`` with ``histograms=True`` (``since``: when it was queued,
  for the queue-wait histogram);
* ``(expires, item)`` (or ``(expires, item, since)``) in a queue that takes
  deadlines (made with ``deadline=`` or ``deadlines=True``); ``expires`` is
  ``inf`` for an item without one. An entry that is also on the heap is a
  list instead, so that it can be marked: one whose item slot holds ``GONE``
  has left the queue (taken, expired, dropped) while the heap or the deque
  still refers to it. (Tuples, not lists, for the rest: the garbage collector
  stops tracking a tuple of untracked things, never a list.)

Deadlines (PVFS2's job time manager). An item whose deadline passes before a
worker takes it is not processed: it is finished with ``DeadlineExpired`` as
its error and handed to ``on_expire``. The timer structure that finds such
items is the deque itself plus a heap. An entry expiring no earlier than
every entry queued before it is *in order*: it needs no timer of its own,
because by the time it expires, everything in front of it has expired too,
and a worker that looks at the queue takes every expired entry off the front
(``take_next``). Every other entry (a shorter deadline than an item in front
of it, or an item queued at the front) also goes on the heap, where the
workers' expiry step (``take_expired``) finds it however deep in the deque it
is; the pool looks at the heaps when ``PoolState.deadline_hint`` says one is
due. A queue with one deadline for all its items (the usual case) therefore
never touches the heap: a deadline costs a clock reading (``Timeline.put``,
and ``Timeline.take`` for the worker).

Bound (``max_items``). A bounded queue holds a deque of tokens, one per free
place: ``queue()`` takes one before it appends (``deque.pop`` is atomic, so the
bound is strict however many producers there are), and the item gives it
back when it leaves the queue. Free places become tokens ``REFILL`` at a time,
from a reserve counted under ``guard``. A full queue follows its policy (``limits``).
Lowering ``max_items`` below what is queued leaves a debt that items pay
back as they leave; changing the bound while producers run may let the
items in transit past the new bound once.

Locks. The pool lock (``PoolState.lock``) for everything workers do. The
queue's own lock, ``guard`` (a ``lockdep.Mutex`` named ``WorkQueue::<name>``),
for the heap, the count of expired entries still in the deque (``_dead``),
the debt, and waiting for room; it is a leaf: taken after the pool lock, and
nothing is taken while it is held. On the lock-free hand-off (the GIL)
producers append and take tokens without either lock: a worker gives a token
back and then looks for waiters, a waiting producer counts itself a waiter and
then looks for a token, so one of the two sees the other. On the locked
paths (``freethreading``) producers append under the pool lock and tokens
come back under ``guard``.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections import deque
from collections.abc import Callable
from contextlib import nullcontext
from time import monotonic, sleep
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict

import lockdep

from .heartbeat import INF, TPHandle
from .histogram import Histogram
from .limits import (
    DeadlineExpired,
    QueueFull,
    check_deadline,
    check_hook,
    check_max_items,
    check_optional_seconds,
    check_policy,
)
from .queue_base import DEFAULT_TIMEOUT, NOTHING, BaseWorkQueue, check_reference
from .state import RECHECK
from .timeline import Timeline

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from .state import PoolState

logger = logging.getLogger("threadpool")


class BaseOptions(TypedDict, total=False):
    """The keyword options of every queue that keeps its items here, the executor's
    queue of calls included: timeouts, histograms, bound and policy, deadline."""

    timeout: float
    suicide_timeout: float
    histograms: bool
    max_items: int | None
    policy: str
    block_timeout: float | None
    deadline: float | None


class Options(BaseOptions, total=False):
    """The keyword options every ready-made queue takes (see ``queues``): the base ones
    and the callbacks, and whether it takes deadlines without a default."""

    on_drop: Callable[[Any], object] | None
    deadlines: bool
    on_expire: Callable[[Any], object] | None


class _Gone:
    __slots__ = ()

    def __repr__(self) -> str:
        return "GONE"


GONE: Any = _Gone()

_ADMITTED = object()  # queue() may append
_RUN_HERE = object()  # caller_runs: the producer runs the item
_CALLER = TPHandle(None, None, "the producer (caller_runs)")
_seq = itertools.count()  # tie-breaker of heap entries: items need not be comparable
REFILL = 1024  # free places made tokens at a time


class Storage(BaseWorkQueue):
    """A queue on the ready-made storage; see the module docstring.

    Subclasses (the ready-made queues) keep it unless they override one of
    their ``_storage_hooks`` (Ceph's way); a bound or deadlines then raise
    TypeError at construction.
    """

    __slots__ = (
        "_block_timeout",
        "_counted",
        "_dated",
        "_dead",
        "_deadline",
        "_debt",
        "_dropped",
        "_expired",
        "_expiring",
        "_fast",
        "_fin",
        "_guard",
        "_heap",
        "_items",
        "_locked",
        "_lockfree",
        "_max_items",
        "_on_drop",
        "_on_expire",
        "_peek_in_order",
        "_plain",
        "_policy",
        "_proc",
        "_rejected",
        "_reserve",
        "_space",
        "_space_waiters",
        "_stamped",
        "_timed",
        "_tokens",
    )

    # The process and finish callables (set by the subclasses).
    _proc: Callable[[Any, TPHandle], object]
    _fin: Callable[[Any], object] | None
    _storage_hooks: ClassVar[tuple[str, ...]] = ()
    refs: ClassVar[bool] = False  # items are object references: None is refused

    def __init__(
        self,
        name: str,
        *,
        owner: type,
        timeout: float = DEFAULT_TIMEOUT,
        suicide_timeout: float = 0.0,
        histograms: bool = False,
        max_items: int | None = None,
        policy: str = "reject",
        block_timeout: float | None = None,
        on_drop: Callable[[Any], object] | None = None,
        deadline: float | None = None,
        deadlines: bool = False,
        on_expire: Callable[[Any], object] | None = None,
    ) -> None:
        super().__init__(
            name, timeout=timeout, suicide_timeout=suicide_timeout, histograms=histograms
        )
        cls = type(self)
        self._fast = all(getattr(cls, h) is getattr(owner, h) for h in self._storage_hooks)
        self._stamped = self._fast and histograms
        if self._stamped:
            self._wait = Histogram()
        max_items = check_max_items(max_items)
        self._policy = check_policy(policy)
        self._block_timeout = check_optional_seconds("block_timeout", block_timeout)
        self._on_drop = check_hook("on_drop", on_drop)
        self._deadline = None if deadline is None else check_deadline(deadline)
        if not isinstance(deadlines, bool):
            raise TypeError(f"deadlines must be True or False, got {deadlines!r}")
        self._timed = deadlines or self._deadline is not None
        self._on_expire = check_hook("on_expire", on_expire)
        # The entries: a Timeline (timeline.py) where they carry deadlines, else a deque
        # (put, take and tail are used only on a timed queue's).
        self._items: Timeline = Timeline(NOTHING) if self._timed else deque()  # type: ignore[assignment]
        if not self._fast and (max_items is not None or self._timed):
            raise TypeError(
                f"{cls.__name__} {name!r} keeps items in storage of its own (it overrides "
                f"{', '.join(self._storage_hooks)}): max_items and deadlines need the "
                f"ready-made storage"
            )
        self._guard = lockdep.Mutex(f"WorkQueue::{name}")
        self._space = lockdep.Cond(self._guard)
        self._space_waiters = 0
        self._max_items: int | None = None
        self._tokens: deque[None] | None = None
        self._reserve = 0  # free places not made tokens yet (guard)
        self._debt = 0
        self._heap: list[tuple[float, int, list[Any]]] = []
        self._dead = 0  # entries in the deque that expired from the heap (guard)
        self._expiring: list[Any] = []  # found expired at the front, to hand over (pool lock)
        self._rejected = 0  # guard
        self._dropped = 0  # guard
        self._expired = 0  # pool lock
        if max_items is not None:
            with self._guard:
                self._set_bound(max_items)
        self._paths_changed()

    # --- settings --------------------------------------------------------------------

    @property
    def max_items(self) -> int | None:
        """The most items the queue holds (None: unbounded). Settable at run time."""
        return self._max_items

    @max_items.setter
    def max_items(self, value: int | None) -> None:
        value = check_max_items(value)
        if not self._fast and value is not None:
            raise TypeError(f"{self!r} keeps items in storage of its own: it cannot be bounded")
        with self._pool_locked(), self._guard:
            self._set_bound(value)
            self._paths_changed()

    @property
    def policy(self) -> str:
        """What queue() does when the queue is full (``limits.POLICIES``). Settable."""
        return self._policy

    @policy.setter
    def policy(self, value: str) -> None:
        self._policy = check_policy(value)

    @property
    def block_timeout(self) -> float | None:
        """Seconds the ``block`` policy waits for room (None: no limit). Settable."""
        return self._block_timeout

    @block_timeout.setter
    def block_timeout(self, value: float | None) -> None:
        self._block_timeout = check_optional_seconds("block_timeout", value)

    @property
    def deadline(self) -> float | None:
        """The deadline (seconds) of items queued without one; None: none. Settable on
        a queue that takes deadlines."""
        return self._deadline

    @deadline.setter
    def deadline(self, value: float | None) -> None:
        if value is not None and not self._timed:
            raise ValueError(f"{self!r} was made without deadlines (deadlines=True)")
        self._deadline = None if value is None else check_deadline(value)
        self._paths_changed()

    @property
    def deadlines(self) -> bool:
        """Whether this queue takes deadlines."""
        return self._timed

    def set_on_drop(self, fn: Callable[[Any], object] | None) -> None:
        """Set what the ``drop_oldest`` policy hands a dropped item to."""
        self._on_drop = check_hook("on_drop", fn)

    def set_on_expire(self, fn: Callable[[Any], object] | None) -> None:
        """Set what an item whose deadline passed is handed to."""
        self._on_expire = check_hook("on_expire", fn)

    def _set_bound(self, value: int | None) -> None:
        """(guard held, and the pool lock when attached)"""
        old, self._max_items = self._max_items, value
        if value is None:
            self._tokens = None
            self._reserve = self._debt = 0
        elif old is None or self._tokens is None:
            free = value - (self._size() or 0)
            self._tokens = deque()
            self._reserve = max(free, 0)
            self._debt = max(-free, 0)
        elif value > old:
            more = value - old
            repaid = min(more, self._debt)
            self._debt -= repaid
            self._reserve += more - repaid
        else:
            fewer = old - value
            from_reserve = min(fewer, self._reserve)
            self._reserve -= from_reserve
            fewer -= from_reserve
            while fewer:
                try:
                    self._tokens.pop()
                except IndexError:
                    break
                fewer -= 1
            self._debt += fewer
        self._space.notify_all()

    def _take_place(self) -> bool:
        """Take a free place, a token or one from the reserve (guard held). The reserve
        becomes tokens REFILL at a time: a bound of a million costs no million tokens."""
        tokens = self._tokens
        if tokens is None:
            return True
        try:
            tokens.pop()
            return True
        except IndexError:
            pass
        if self._reserve:
            n = min(self._reserve, REFILL)
            self._reserve -= n
            tokens.extend([None] * (n - 1))
            return True
        return False

    def attach(self, state: PoolState) -> None:
        super().attach(state)
        self._paths_changed()

    def detach(self) -> None:
        super().detach()
        self._paths_changed()

    def _paths_changed(self) -> None:
        """Which inline cases queue() and dequeue_unit take, from the queue's settings."""
        st = self._state
        locked = st is not None and st.locked_paths
        simple = self._fast and self._tokens is None and not self._timed
        self._lockfree = simple and not locked
        self._plain = simple and not self._stamped  # dequeue may just popleft()
        quick = self._fast and not self._stamped and not locked
        # queue()'s inline case for deadlines: timed, lock-free, no stamps (bounded or not).
        self._dated = quick and self._timed
        # Bounded, untimed, lock-free, no stamps: queue() takes a token and appends,
        # dequeue_unit pops and gives the token back, both inline.
        self._counted = quick and self._tokens is not None and not self._timed
        # Attached, timed, unbounded, no stamps: only workers pop, with the pool lock, so
        # a worker may look at the front before it takes it (dequeue_unit's inline case).
        self._peek_in_order = st is not None and self._timed and self._tokens is None
        self._peek_in_order = self._peek_in_order and not self._stamped
        self._locked = locked

    def _pool_locked(self) -> AbstractContextManager[None]:
        st = self._state
        return st.locked() if st is not None else nullcontext()

    # --- producers -------------------------------------------------------------------

    def queue(self, item: Any, *, deadline: float | None = None) -> bool:
        """Queue ``item`` at the back; a sleeping worker is woken for it. ``deadline``:
        seconds from now, on a queue that takes deadlines (default: its own).

        Returns True, or False when the producer ran the item itself (``caller_runs``
        on a full queue) or a storage hook of the queue's own refused it. QueueFull
        when a full queue refuses it (``reject``, or ``block`` past its timeout).
        """
        if item is None and self.refs:
            check_reference(self, item)
        if self._lockfree and deadline is None:  # the hot path: no lock at all
            self._items.append((monotonic(), item) if self._stamped else item)
        elif self._dated:  # timed, lock-free: a deadline costs a clock reading
            if deadline is None:
                deadline = self._deadline
            elif not ((type(deadline) is float or type(deadline) is int) and 0 < deadline < INF):
                deadline = check_deadline(deadline)
            tokens = self._tokens
            if tokens is not None:  # bounded: take a place first
                try:
                    tokens.pop()
                except IndexError:
                    return self._put_full(item, deadline, False)
            items = self._items
            if deadline is None:  # none: never expires, and what follows is not in order
                items.tail = INF
                items.append((INF, item))
            elif not items.put(item, deadline):  # out of order: a timer of its own
                self._place(item, deadline, False)
                return True
        elif self._counted:  # bounded, untimed, lock-free: take a place first
            if deadline is not None:
                self._no_deadlines()
            tokens = self._tokens  # once: max_items = None may clear it meanwhile
            if tokens is not None:
                try:
                    tokens.pop()
                except IndexError:
                    return self._put_full(item, None, False)
            self._items.append(item)
        else:
            return self._put(item, deadline)
        st = self._state
        if st is not None and (st.idle or st.can_grow):
            st.item_queued()
        return True

    def offer(self, item: Any, *, deadline: float | None = None) -> bool:
        """queue() unless the queue is full: then False, with no policy applied and
        nothing counted (for callers that must not wait: an event loop, say)."""
        if item is None and self.refs:
            check_reference(self, item)
        if not self._fast:
            return self._put(item, deadline)
        if deadline is not None:
            if not self._timed:
                self._no_deadlines()
            deadline = check_deadline(deadline)
        tokens = self._tokens
        if tokens is not None:
            try:
                tokens.pop()
            except IndexError:
                with self._guard:
                    if not self._take_place():
                        return False
        self._place(item, deadline, False)
        return True

    def _put(self, item: Any, deadline: float | None = None, front: bool = False) -> bool:
        """queue() and queue_front() off their inline paths (see queue)."""
        if not self._fast:
            if deadline is not None:
                raise TypeError(f"{self!r} keeps items in storage of its own: no deadlines")
            hook = getattr(self, "_enqueue_front" if front else "_enqueue")
            return self._queue_locked(hook, item) is not False
        if deadline is not None:
            if not self._timed:
                self._no_deadlines()
            deadline = check_deadline(deadline)
        tokens = self._tokens  # once: max_items = None may clear it meanwhile
        if tokens is not None:
            try:
                tokens.pop()
            except IndexError:
                return self._put_full(item, deadline, front)
        self._place(item, deadline, front)
        return True

    def _no_deadlines(self) -> None:
        raise TypeError(
            f"queue() of {self!r} with a deadline: the queue was made without deadlines "
            f"(give it deadline= or deadlines=True)"
        )

    def _kick(self) -> None:
        """After a lock-free append: wake an idle worker, or let an elastic pool grow."""
        st = self._state
        if st is not None and (st.idle or st.can_grow):
            st.item_queued()

    def _put_full(self, item: Any, deadline: float | None, front: bool) -> bool:
        """queue() found no place: the policy (see limits)."""
        if deadline is not None:
            deadline = check_deadline(deadline)
        ticket = self._admit()
        if ticket is _RUN_HERE:
            self._run_here(item)
            return False
        self._place(item, deadline, front)
        if ticket is not _ADMITTED:
            self._dropped_one(ticket)
        return True

    def _place(self, item: Any, deadline: float | None, front: bool) -> None:
        """Append an admitted item: its entry (see the module docstring), on the heap too
        if it is not in order, under the pool lock on the locked paths."""
        heaped = False
        entry: Any
        if self._timed:
            now = monotonic()
            if deadline is None:
                deadline = self._deadline
            expires = INF if deadline is None else now + deadline
            if expires == INF:
                entry = (INF, item, now) if self._stamped else (INF, item)
                if not front:
                    self._items.tail = INF  # what comes behind it is not in order
            elif front or expires < self._items.tail:
                entry = [expires, item, now] if self._stamped else [expires, item]
                heaped = True
            else:
                self._items.tail = expires
                entry = (expires, item, now) if self._stamped else (expires, item)
        elif self._stamped:
            entry = (monotonic(), item)
        else:
            entry = item
        st = self._state
        if st is not None and self._locked:
            with st.locked():
                self._append(entry, heaped, front)
                st.item_queued_locked()
        else:
            self._append(entry, heaped, front)
            self._kick()

    def _append(self, entry: Any, heaped: bool, front: bool) -> None:
        if heaped:
            expires = entry[0]
            with self._guard:
                heapq.heappush(self._heap, (expires, next(_seq), entry))
            st = self._state
            if st is not None:  # at most RECHECK ahead: a lowering lost to a race costs little
                due = min(expires, monotonic() + RECHECK)
                if due < st.deadline_hint:
                    st.deadline_hint = due
        if front:
            self._items.appendleft(entry)
        else:
            self._items.append(entry)

    def _admit(self) -> Any:
        """Take a place in the bounded queue, or follow the policy: _ADMITTED, _RUN_HERE,
        a dropped item (whose place the new one takes), or QueueFull."""
        tokens = self._tokens
        if tokens is None:
            return _ADMITTED
        try:
            tokens.pop()
            return _ADMITTED
        except IndexError:
            pass
        with self._guard:  # the reserve, or a bound removed since ``tokens`` was read
            if self._take_place():
                return _ADMITTED
        policy = self._policy
        if policy == "block":
            return self._wait_for_room()
        if policy == "caller_runs":
            return _RUN_HERE
        if policy == "drop_oldest":
            return self._make_room()
        with self._guard:
            self._rejected += 1
        raise QueueFull(self.name, self._max_items or 0, policy, "item refused")

    def _wait_for_room(self) -> Any:
        st = self._state
        if st is not None and st.lock.is_locked_by_me():
            with self._guard:
                self._rejected += 1
            raise QueueFull(
                self.name,
                self._max_items or 0,
                "block",
                "cannot wait for room holding the pool lock (queue() from a finish step)",
            )
        timeout = self._block_timeout
        end = None if timeout is None else monotonic() + timeout
        with self._guard:
            self._space_waiters += 1  # before looking for a token: see the module docstring
            try:
                while True:
                    if self._take_place():
                        return _ADMITTED
                    remaining = None if end is None else end - monotonic()
                    if remaining is not None and remaining <= 0:
                        self._rejected += 1
                        raise QueueFull(
                            self.name,
                            self._max_items or 0,
                            "block",
                            f"no room within block_timeout {timeout:g}s",
                        )
                    self._space.wait(remaining)
            finally:
                self._space_waiters -= 1

    def _make_room(self) -> Any:
        """drop_oldest: a place freed meanwhile, or else the oldest live item's: it leaves
        the queue (returned, for on_drop) and the new item takes its token."""
        while True:
            with self._pool_locked() if self._locked else nullcontext(), self._guard:
                if self._take_place():
                    return _ADMITTED
                items = self._items
                while True:
                    try:
                        entry = items.popleft()
                    except IndexError:
                        break
                    item = self._unwrap(entry)
                    if item is GONE:
                        self._dead -= 1
                        continue
                    self._dropped += 1
                    return item
            sleep(0)  # another producer holds a token it has not used yet: let it

    def _unwrap(self, entry: Any) -> Any:
        """The item of a storage entry, GONE if it left already; marks a heap entry gone."""
        if self._timed:
            item = entry[1]
            if type(entry) is list:
                entry[1] = GONE
            return item
        return entry[1] if self._stamped else entry

    def _dropped_one(self, item: Any) -> None:
        fn = self._on_drop
        if fn is None:
            logger.warning("%r: full; dropped the oldest item to make room (no on_drop)", self)
            return
        try:
            fn(item)
        except Exception:
            logger.exception("%r: on_drop raised", self)

    def _run_here(self, item: Any) -> None:
        """caller_runs: the producer runs the item's process and finish steps."""
        unit = [item] if self.batch else item
        error: BaseException | None = None
        begin = monotonic()
        try:
            self._proc(unit, _CALLER)
        except BaseException as exc:
            error = exc
            logger.error(
                "%r: process step raised in the producer (caller_runs)", self, exc_info=exc
            )
        seconds = monotonic() - begin
        with self._pool_locked():
            fin = self._fin
            if fin is not None:
                try:
                    self._finish_one(fin, unit, error)
                except BaseException as exc:
                    logger.error("%r: finish step raised (caller_runs)", self, exc_info=exc)
                    error = error or exc
            self.account(unit, error is not None, seconds)

    def _finish_one(
        self, fin: Callable[[Any], object], unit: Any, error: BaseException | None
    ) -> None:
        self.error = error
        try:
            fin(unit)
        finally:
            self.error = None

    # --- workers (pool lock held) -------------------------------------------------------

    def take_next(self) -> Any:
        """The next live item (its place given back), or NOTHING; expired items met on
        the way are set aside for the expiry step."""
        items = self._items
        st = self._state
        now = monotonic() if st is None else st.now  # see PoolState.now
        while True:
            try:
                entry = items.popleft()
            except IndexError:
                if self._timed:
                    items.tail = -INF  # empty: the next entry is in order whatever it is
                return NOTHING
            if self._timed:
                item = entry[1]
                if type(entry) is list:  # also on the heap: mark it taken, or skip it
                    if item is GONE:
                        with self._guard:
                            self._dead -= 1
                        continue
                    entry[1] = GONE
                if entry[0] <= now:
                    self._found_expired(item)
                    continue
                if self._stamped:
                    self._wait.observe(monotonic() - entry[2])  # type: ignore[union-attr]
            elif self._stamped:
                since, item = entry
                self._wait.observe(monotonic() - since)  # type: ignore[union-attr]
            else:
                item = entry
            tokens = self._tokens
            if tokens is not None:  # _give_back(), inline for its usual case
                if self._debt or self._locked:
                    with self._guard:
                        self._give_back_guarded()
                else:
                    tokens.append(None)
                    if self._space_waiters:
                        with self._guard:
                            self._space.notify()
            return item

    def _found_expired(self, item: Any) -> None:
        self._expiring.append(item)
        if self._tokens is not None:
            self._give_back()
        st = self._state
        if st is not None:
            st.deadline_hint = 0.0  # the expiry step at the next look

    def _give_back(self) -> None:
        """An item left the queue: its place is free (pool lock held)."""
        tokens = self._tokens
        if tokens is None:
            return
        if self._debt or self._locked:
            with self._guard:
                self._give_back_guarded()
        else:
            tokens.append(None)
            if self._space_waiters:  # after the append: see the module docstring
                with self._guard:
                    self._space.notify()

    def _place_freed(self) -> None:
        """An item of a bounded queue on the lock-free paths left it (pool lock held):
        dequeue_unit's inline case of ``_give_back``."""
        if self._debt:
            with self._guard:
                self._give_back_guarded()
            return
        self._tokens.append(None)  # type: ignore[union-attr]
        if self._space_waiters:  # after the append: see the module docstring
            self._wake_space()

    def _wake_space(self) -> None:
        """A place came free while a producer waits for one: wake one."""
        with self._guard:
            self._space.notify()

    def _give_back_guarded(self) -> None:
        tokens = self._tokens
        if tokens is None:
            return
        if self._debt:
            self._debt -= 1
            return
        tokens.append(None)
        if self._space_waiters:
            self._space.notify()

    def take_expired(self, now: float) -> list[Any]:
        """Items whose deadline passed by ``now``: those set aside at the front, and those
        the heap says are due (pool lock held). They count as expired."""
        out = self._expiring
        self._expiring = []
        heap = self._heap
        if heap and heap[0][0] <= now:
            with self._guard:
                while heap and heap[0][0] <= now:
                    entry = heapq.heappop(heap)[2]
                    item = entry[1]
                    if item is GONE:
                        continue
                    entry[1] = GONE
                    self._dead += 1
                    out.append(item)
                    if self._tokens is not None:
                        self._give_back_guarded()
                self._compact()
        self._expired += len(out)
        return out

    def _compact(self) -> None:
        """Drop the timers of items that left the queue, once they are most of the heap
        (guard held): the heap stays within twice what is queued."""
        heap = self._heap
        if len(heap) > 64 and len(heap) > 2 * (len(self._items) - self._dead):
            heap[:] = [h for h in heap if h[2][1] is not GONE]
            heapq.heapify(heap)

    def next_deadline(self) -> float:
        """When take_expired next has something (pool lock held); inf: never. Drops the
        timers of items taken meanwhile."""
        if self._expiring:
            return 0.0
        heap = self._heap
        if heap:
            with self._guard:
                while heap and heap[0][2][1] is GONE:
                    heapq.heappop(heap)
                self._compact()
        return heap[0][0] if heap else INF

    def hand_expired(self, items: list[Any]) -> None:
        """Hand expired items to on_expire (without the pool lock); errors are logged."""
        fn = self._on_expire
        if fn is None:
            return
        for item in items:
            try:
                fn(item)
            except Exception:
                logger.exception("%r: on_expire raised", self)

    def finish_expired(self, items: list[Any]) -> None:
        """Run the finish steps of expired items, with DeadlineExpired (pool lock held)."""
        fin = self._fin
        if fin is None:
            return
        error = DeadlineExpired(self.name)
        units = [items] if self.batch else items
        for unit in units:
            try:
                self._finish_one(fin, unit, error)
            except Exception:
                logger.exception("%r: finish step of an expired item raised", self)

    def busy(self) -> bool:
        return bool(self._expiring)

    # --- the rest of the storage (pool lock held, unless said) ---------------------------

    def _size(self) -> int | None:
        return len(self._items) - self._dead if self._fast else None

    def _live(self) -> bool:
        return len(self._items) > self._dead

    def _item_of(self, entry: Any) -> Any:
        return entry[1] if self._timed or self._stamped else entry

    def _peek(self) -> Any:
        """The next item to be taken, or None (a snapshot: a worker may take it at once)."""
        items = self._items
        try:
            item = self._item_of(items[0])
        except IndexError:
            return None
        if item is not GONE:
            return item
        for entry in list(items):  # a copy: producers may be appending
            item = self._item_of(entry)
            if item is not GONE:
                return item
        return None

    def _remove_first(self, item: Any) -> bool:
        """Remove the first queued occurrence of ``item`` (by identity). Producers only
        append meanwhile, so an index into a copy of the deque stays right."""
        with self._guard:
            for i, entry in enumerate(list(self._items)):
                if self._item_of(entry) is item:
                    del self._items[i]
                    if self._timed and type(entry) is list:
                        entry[1] = GONE
                    if self._tokens is not None:
                        self._give_back_guarded()
                    return True
        return False

    def _take_all(self) -> list[Any]:
        out = []
        items = self._items
        with self._guard:
            while items:  # one by one: a lock-free queue() may be appending
                item = self._unwrap(items.popleft())
                if item is GONE:
                    self._dead -= 1
                    continue
                out.append(item)
                if self._tokens is not None:
                    self._give_back_guarded()
        return out

    def _put_back(self, item: Any, front: bool) -> None:
        """Put back an item a worker took (pool lock held): without a deadline, and past a
        full bound if need be (it owes its place back then)."""
        entry: Any
        if self._timed:
            entry = (INF, item, monotonic()) if self._stamped else (INF, item)
            if not front:
                self._items.tail = INF
        elif self._stamped:
            entry = (monotonic(), item)
        else:
            entry = item
        if self._tokens is not None:
            with self._guard:
                if not self._take_place():
                    self._debt += 1
        if front:
            self._items.appendleft(entry)
        else:
            self._items.append(entry)

    def snapshot(self) -> dict[str, Any]:
        out = super().snapshot()
        out.update(
            max_items=self._max_items,
            policy=self._policy,
            deadline=self._deadline,
            rejected=self._rejected,
            dropped=self._dropped,
            expired=self._expired,
            timers=len(self._heap),
        )
        return out
