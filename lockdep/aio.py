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
from types import FrameType

from . import held as hs
from .held import CHAIN, Entry
from .roles import class_tkey
from .tracker import BINARY, LOCKDEP, capture

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Literal

_OriginalLock = _locks.Lock
_stacks: weakref.WeakKeyDictionary[asyncio.Task[object], list[Entry]] = weakref.WeakKeyDictionary()
_LOCKS_FILE = _locks.__file__


def _task_held() -> list[Entry]:
    """The current task's held stack (the thread's outside any task)."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    if task is None:
        return LOCKDEP.local.held
    held = _stacks.get(task)
    if held is None:
        held = _stacks[task] = [LOCKDEP.sentinel]
    return held


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

    async def acquire(self) -> Literal[True]:
        tkey = self._lockdep_tkey
        mode = LOCKDEP.mode
        if tkey is None or mode == "plain" or LOCKDEP.local.state.busy:
            return await super().acquire()
        held = _task_held()
        frame = _caller(sys._getframe(1))
        if mode == "fast":  # no backtraces, no statistics: will_lock would only look up
            node = held[-1][CHAIN].get(tkey)
            if node is not None:
                await super().acquire()
                LOCKDEP.locked(held, self, tkey, node, frame)
                return True
        stack = capture(frame) if LOCKDEP.backtrace else None
        node, _reentry = LOCKDEP.will_lock(self, tkey, held, frame, stack, policy=BINARY)
        await super().acquire()
        LOCKDEP.locked(held, self, tkey, node, frame, stack)
        return True

    def release(self) -> None:
        if self._lockdep_tkey is not None and LOCKDEP.mode != "plain":
            _forget(self)
        super().release()


class _InstalledLock(TrackedAsyncLock):
    """TrackedAsyncLock as ``asyncio.Lock``: messages that name the type (``object Lock
    can't be used in 'await' expression``) read as asyncio's own, which its tests check."""


_InstalledLock.__name__ = _InstalledLock.__qualname__ = "Lock"


def _forget(lock: TrackedAsyncLock) -> None:
    """Take lock off the stack of whichever task holds it (the current one first); a
    release on another task's behalf makes its class a binary semaphore."""
    if hs.remove(_task_held(), lock):
        return
    for held in list(_stacks.values()):
        if hs.remove(held, lock):
            if lock._lockdep_tkey is not None:
                LOCKDEP.note_semaphore(lock._lockdep_tkey)
            return


def patch() -> None:
    for module in (asyncio, _locks):
        setattr(module, "Lock", _InstalledLock)  # noqa: B010


def unpatch() -> None:
    for module in (asyncio, _locks):
        setattr(module, "Lock", _OriginalLock)  # noqa: B010
