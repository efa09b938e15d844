"""``asyncio.Lock`` tracked per task (imported by ``install()`` once asyncio is in use).

Coroutines interleave on one thread, so a thread's held stack says nothing
about their ordering: here each task has its own held stack, and an ABBA
between two coroutines is reported on the acquisition that closes the cycle,
before the task waits. An ``asyncio.Lock``'s class is its role (see ``roles``);
like ``threading.Lock`` it has no owner (any task may release it), so it is
treated like the ``threading.Lock`` of ``install()``: instances of one class are
ordered among themselves, and a task taking again a lock it holds is a
self-deadlock unless the class was seen used as a binary semaphore.

Statistics and wait-timeout reports do not apply to asyncio locks: a task
waiting on one does not block its thread.
"""

from __future__ import annotations

import asyncio
import sys
import weakref
from asyncio import locks as _locks
from collections.abc import Awaitable, Callable
from types import FrameType, FunctionType

from . import held as hs
from .held import CHAIN, LOCK, Entry
from .roles import class_tkey
from .tracker import BINARY, LOCKDEP, capture

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Literal

    from .chains import Chain
    from .checks import Stack

    # What _will_take gives _taken: the task (None outside any), its held stack, the
    # key, the chain node, the site's frame, the backtrace, whether the node was cached.
    _Taking = tuple[
        asyncio.Task[object] | None, list[Entry], int, Chain, FrameType | None, Stack, bool
    ]

_OriginalLock = _locks.Lock
_LOCKS_FILE = _locks.__file__
_local = LOCKDEP.local
_ref = weakref.ref

# The held stacks of the tasks that hold tracked asyncio locks, by a weak
# reference to the task: a task is entered when it takes its first and left
# when it lets go of its last, so that the many tasks that take one lock at a
# time cost a few dict operations each. A task that ends holding a lock
# (released later by another task, or never) leaves once it is collected.
_stacks: dict[weakref.ref[asyncio.Task[object]], list[Entry]] = {}


def _gone(ref: weakref.ref[asyncio.Task[object]]) -> None:
    _stacks.pop(ref, None)


_running_loop = asyncio.events._get_running_loop
# asyncio.current_task(loop), for a running loop: up to 3.11 a Python function
# reading the running tasks' dict, which is read here directly.
_tasks_by_loop = getattr(asyncio.tasks, "_current_tasks", None)
_current_task: Callable[[asyncio.AbstractEventLoop], asyncio.Task[object] | None] = (
    _tasks_by_loop.get
    if isinstance(asyncio.current_task, FunctionType) and isinstance(_tasks_by_loop, dict)
    else asyncio.current_task
)


def _task() -> asyncio.Task[object] | None:
    """The current task, or None outside any (no running loop, or a callback)."""
    loop = _running_loop()
    return _current_task(loop) if loop is not None else None


def _task_held() -> list[Entry]:
    """The current task's held stack (the thread's outside any task; a new one for a
    task that holds nothing)."""
    task = _task()
    return _local.held if task is None else (_stacks.get(_ref(task)) or [LOCKDEP.sentinel])


def _caller(frame: FrameType | None) -> FrameType | None:
    # Skip asyncio's own frames (``async with`` goes through __aenter__).
    while frame is not None and frame.f_code.co_filename == _LOCKS_FILE:
        frame = frame.f_back
    return frame


class TrackedAsyncLock(_OriginalLock):
    """``asyncio.Lock()`` after ``install()``: class = allocation site, held stacks per task."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # 3.10's removed ``loop=`` is refused by asyncio, as without us
        frame = _caller(sys._getframe(1))
        self._lockdep_node = 0  # the tracker's: instance number
        self._lockdep_pos = 0  # the tracker's: where on the held stack
        self._lockdep_tkey = class_tkey(frame) if frame is not None else None

    def __del__(self) -> None:
        try:
            if self._lockdep_node:
                LOCKDEP.forget_instance_later(self._lockdep_node)
        except Exception:
            pass  # interpreter shutdown

    # ``await lock.acquire()`` and ``async with lock`` each take the lock in their own
    # coroutine (asyncio's __aenter__ awaits acquire(): one coroutine more for every
    # ``async with``, and for every wake-up of a task that waited). Set once per class
    # (__init_subclass__): whether it defines its own acquire(), and the acquire() and
    # release() that super() would find from here in its MRO (asyncio's, unless a class
    # comes between), called without making a super object each time.
    _own_acquire = False
    _next_acquire: Callable[[_OriginalLock], Awaitable[Literal[True]]]
    _next_release: Callable[[_OriginalLock], None]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls._own_acquire = cls.acquire is not TrackedAsyncLock.acquire
        cls._next_acquire = staticmethod(super().acquire)
        cls._next_release = staticmethod(super().release)

    async def acquire(self) -> Literal[True]:
        taking = self._will_take(sys._getframe(1))
        await self._next_acquire(self)
        if taking is not None:
            self._taken(*taking)
        return True

    async def __aenter__(self) -> None:
        if self._own_acquire:  # a subclass's acquire, called as asyncio would
            await self.acquire()
            return
        taking = self._will_take(sys._getframe(1))
        await self._next_acquire(self)
        if taking is not None:
            self._taken(*taking)

    def _will_take(self, frame: FrameType | None) -> _Taking | None:
        """What comes before a tracked acquisition waits: the checks (a violation is
        reported before the task waits). None when the lock is not tracked now."""
        tkey = self._lockdep_tkey
        mode = LOCKDEP.mode
        if tkey is None or mode == "plain" or _local.state.busy:
            return None
        # _task_held and _caller, inline: every task's acquisitions pass here. A task
        # that holds nothing gets a new stack, entered in _stacks with its first entry.
        loop = _running_loop()
        task = _current_task(loop) if loop is not None else None
        if task is None:
            held = _local.held
        else:  # (no task holding a lock, the common case: no weak reference to make)
            held = (_stacks and _stacks.get(_ref(task))) or [LOCKDEP.sentinel]
        while frame is not None and frame.f_code.co_filename == _LOCKS_FILE:
            frame = frame.f_back
        if mode == "fast":  # no backtraces, no statistics: will_lock would only look up
            node = held[-1][CHAIN].get(tkey)
            if node is not None:
                return task, held, tkey, node, frame, None, True
        stack = capture(frame) if LOCKDEP.backtrace else None
        node, _reentry = LOCKDEP.will_lock(self, tkey, held, frame, stack, policy=BINARY)
        return task, held, tkey, node, frame, stack, False

    def _taken(
        self,
        task: asyncio.Task[object] | None,
        held: list[Entry],
        tkey: int,
        node: Chain,
        frame: FrameType | None,
        stack: Stack,
        cached: bool,
    ) -> None:
        """The lock is taken: push its entry (what _will_take found) on the task's stack,
        and enter the stack with its first."""
        if cached:  # what LOCKDEP.locked pushes in the fast mode (no extra), inline
            self._lockdep_pos = len(held)
            if frame is None:
                held.append((self, tkey, node, None, -1, None))
            else:
                held.append((self, tkey, node, frame.f_code, frame.f_lasti, None))
        else:
            LOCKDEP.locked(held, self, tkey, node, frame, stack)
        if len(held) == 2 and task is not None:  # its first entry: enter the stack
            _stacks[_ref(task, _gone)] = held

    def release(self) -> None:
        if self._lockdep_tkey is not None and LOCKDEP.mode != "plain":
            # _forget's common case inline: the lock on top of the current task's stack.
            loop = _running_loop()
            task = _current_task(loop) if loop is not None else None
            if task is None:
                held: list[Entry] | None = _local.held
            else:
                ref = _ref(task)
                held = _stacks.get(ref)
            if held is not None and held[-1][LOCK] is self:
                hs.pop_top(held)
                if len(held) == 1 and task is not None:  # its last: leave
                    _stacks.pop(ref, None)
            else:
                _forget(self)
        self._next_release(self)


TrackedAsyncLock._next_acquire = staticmethod(_OriginalLock.acquire)
TrackedAsyncLock._next_release = staticmethod(_OriginalLock.release)


class _InstalledLock(TrackedAsyncLock):
    """TrackedAsyncLock as ``asyncio.Lock``: messages that name the type (``object Lock
    can't be used in 'await' expression``) read as asyncio's own, which its tests check."""


_InstalledLock.__name__ = _InstalledLock.__qualname__ = "Lock"


def _forget(lock: TrackedAsyncLock) -> None:
    """Take lock off the stack of whichever task holds it (the current one first); a
    release on another task's behalf makes its class a binary semaphore."""
    task = _task()
    held = _local.held if task is None else _stacks.get(_ref(task))
    if held is not None and hs.remove(held, lock):
        if len(held) == 1 and task is not None:  # its last: leave
            _stacks.pop(_ref(task), None)
        return
    for ref, held in list(_stacks.items()):
        if hs.remove(held, lock):
            if len(held) == 1:
                _stacks.pop(ref, None)
            if lock._lockdep_tkey is not None:
                LOCKDEP.note_semaphore(lock._lockdep_tkey)
            return


def patch() -> None:
    for module in (asyncio, _locks):
        setattr(module, "Lock", _InstalledLock)  # noqa: B010


def unpatch() -> None:
    for module in (asyncio, _locks):
        setattr(module, "Lock", _OriginalLock)  # noqa: B010
