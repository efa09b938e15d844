"""``Cond``: a condition variable bound to one ``Mutex``, threading.Condition-compatible.

Waiting releases the mutex and takes it again, and lockdep sees exactly that:
the mutex leaves the held stack for the wait and its re-take is validated like
any acquisition (Ceph leaves the mutex "held" across the wait, which hides
inversions made while it is released). Waiting or notifying without holding
the mutex raises RuntimeError, as threading.Condition does.
"""

from __future__ import annotations

import _thread
import sys
from collections import deque
from collections.abc import Callable
from time import monotonic

from .mutex import Mutex

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import TypeVar

    T = TypeVar("T")

_getframe = sys._getframe


class Cond:
    """A condition variable over ``mutex``. Thread-safe; FIFO wake-up order."""

    __slots__ = ("_mutex", "_waiters")

    def __init__(self, mutex: Mutex) -> None:
        if not isinstance(mutex, Mutex):
            raise TypeError(f"Cond needs a lockdep.Mutex, got {mutex!r}")
        self._mutex = mutex
        self._waiters: deque[_thread.LockType] = deque()

    @property
    def mutex(self) -> Mutex:
        return self._mutex

    def __enter__(self) -> Cond:
        self._mutex.lock()
        return self

    def __exit__(self, *exc: object) -> None:
        self._mutex.unlock()

    def __repr__(self) -> str:
        return f"<lockdep.Cond over {self._mutex!r}, {len(self._waiters)} waiting>"

    def wait(self, timeout: float | None = None) -> bool:
        """Release the mutex, wait for a notify or the timeout, take the mutex again.

        Returns False if the timeout expired. The mutex is held again on return,
        also when the wait is interrupted by an exception.
        """
        self._check_owner("wait on")
        waiter = _thread.allocate_lock()
        waiter.acquire()
        self._waiters.append(waiter)
        frame = _getframe(1)
        saved = self._mutex._release_save()
        got = False
        try:
            if timeout is None:
                got = waiter.acquire()
            elif timeout > 0:
                got = waiter.acquire(True, timeout)
            else:
                got = waiter.acquire(False)
            return got
        finally:
            self._mutex._acquire_restore(saved, frame)
            if not got:
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass  # notified between the timeout and here

    def wait_for(self, predicate: Callable[[], T], timeout: float | None = None) -> T:
        """Wait until predicate() is true (checked with the mutex held) or the timeout expires."""
        end: float | None = None
        result = predicate()
        while not result:
            if timeout is not None:
                if end is None:
                    end = monotonic() + timeout
                remaining = end - monotonic()
                if remaining <= 0:
                    break
                self.wait(remaining)
            else:
                self.wait()
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        """Wake up to n waiters."""
        self._check_owner("notify on")
        waiters = self._waiters
        while waiters and n > 0:
            waiter = waiters.popleft()
            try:
                waiter.release()
            except RuntimeError:
                pass  # its wait timed out meanwhile
            n -= 1

    def notify_all(self) -> None:
        self.notify(len(self._waiters))

    def _check_owner(self, what: str) -> None:
        if not self._mutex.is_locked_by_me():
            raise RuntimeError(
                f"cannot {what} a Cond whose Mutex {self._mutex.name!r} is not held by this thread"
            )
