"""``SharedMutex``: a writer-preferring reader/writer lock with a lockdep class.

Many readers or one writer. A writer that is waiting holds back new readers,
so writers never starve; the price is that a thread which takes the read side
twice deadlocks if a writer queues in between. lockdep therefore reports a
read-after-read of one class by one thread as recursive locking, and treats
read and write acquisitions alike for ordering: a read-read cycle can deadlock
behind a waiting writer, as with Linux's rwsem.

The write side is owner-checked (releasing it without holding it is an
``unlock`` violation); the read side is not.
"""

from __future__ import annotations

import _thread
import sys
import threading
from types import FrameType, TracebackType

from .keys import CLASS_STRIDE, READ
from .mutex import check_acquire_args, check_flag, check_name
from .tracker import LOCKDEP

_getframe = sys._getframe
_Condition = threading.Condition  # the original, should lockdep.install() replace it later


class SharedMutex:
    """A reader/writer lock validated by lockdep.

    ``SharedMutex(name, lockdep=True, backtrace=False)``.

    ``lock``/``unlock``/``try_lock`` take the write side, ``lock_shared``/
    ``unlock_shared``/``try_lock_shared`` the read side; ``with m.write():`` and
    ``with m.read():`` are the context-manager forms. Thread-safe.
    """

    __slots__ = (
        "__weakref__",
        "_backtrace",
        "_cond",
        "_id",
        "_lockdep_node",
        "_lockdep_pos",
        "_name",
        "_readers",
        "_tkey",
        "_writer",
        "_writers_waiting",
    )

    def __init__(self, name: str, lockdep: bool = True, backtrace: bool = False) -> None:
        self._id = -1
        self._lockdep_node = 0  # the tracker's (see tracker, held)
        self._lockdep_pos = 0
        self._name = check_name("SharedMutex", name)
        check_flag("lockdep", lockdep)
        self._backtrace = check_flag("backtrace", backtrace)
        self._cond = _Condition(_thread.allocate_lock())
        self._readers = 0
        self._writer: int | None = None  # ident of the writer
        self._writers_waiting = 0
        if lockdep:
            self._id = LOCKDEP.register(name)
        self._tkey: int | None = self._id * CLASS_STRIDE if self._id >= 0 else None

    @property
    def name(self) -> str:
        return self._name

    def close(self) -> None:
        """Drop this instance's reference to its class now; it stays usable, untracked."""
        if self.is_locked():
            raise RuntimeError(f"cannot close SharedMutex {self._name!r} while it is locked")
        if self._id >= 0:
            cid, self._id, self._tkey = self._id, -1, None
            LOCKDEP.unregister(cid)

    def __del__(self) -> None:
        try:
            if self._id >= 0:
                LOCKDEP.unregister_later(self._id)
        except Exception:
            pass

    def __repr__(self) -> str:
        if self._writer is not None:
            state = "write-locked"
        elif self._readers:
            state = f"read-locked by {self._readers}"
        else:
            state = "unlocked"
        return f"<lockdep.SharedMutex {self._name!r} {state} at {id(self):#x}>"

    def is_locked(self) -> bool:
        return self._writer is not None or self._readers > 0

    def is_wlocked(self) -> bool:
        return self._writer is not None

    def readers(self) -> int:
        return self._readers

    # --- write side -------------------------------------------------------------

    def lock(self) -> None:
        """Take the write side, blocking."""
        self._take(False, True, -1.0, _getframe(1))

    def try_lock(self) -> bool:
        return self._take(False, False, -1.0, _getframe(1))

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """The write side, threading.Lock-compatible."""
        timeout = check_acquire_args(blocking, timeout)
        return self._take(False, bool(blocking), timeout, _getframe(1))

    def unlock(self) -> None:
        """Release the write side; the calling thread must hold it."""
        self._give(False, _getframe(1))

    release = unlock

    def __enter__(self) -> SharedMutex:
        self._take(False, True, -1.0, _getframe(1))
        return self

    def __exit__(self, *exc: object) -> None:
        self._give(False, _getframe(1))

    # --- read side --------------------------------------------------------------

    def lock_shared(self) -> None:
        """Take the read side, blocking (behind any waiting writer)."""
        self._take(True, True, -1.0, _getframe(1))

    def try_lock_shared(self) -> bool:
        return self._take(True, False, -1.0, _getframe(1))

    def unlock_shared(self) -> None:
        self._give(True, _getframe(1))

    def read(self) -> _Guard:
        """``with m.read():`` holds the read side for the block."""
        return _Guard(self, True)

    def write(self) -> _Guard:
        """``with m.write():`` holds the write side for the block."""
        return _Guard(self, False)

    # --- implementation ---------------------------------------------------------

    def _take(self, read: bool, blocking: bool, timeout: float, frame: FrameType) -> bool:
        raw = self._raw_read if read else self._raw_write
        tkey = self._tkey
        if tkey is None or not LOCKDEP.tracking:
            return raw(blocking, timeout)
        return LOCKDEP.acquire(
            self,
            raw,
            tkey | READ if read else tkey,
            blocking,
            timeout,
            frame,
            backtrace=self._backtrace,
        )

    def _give(self, read: bool, frame: FrameType | None) -> None:
        tracker = LOCKDEP
        raw = self._raw_unlock_read if read else self._raw_unlock_write
        if (
            self._tkey is None
            or not tracker.tracking
            or tracker.pop_entry(self, read) is not None
            or tracker.local.state.busy
        ):
            raw()
            return
        holders = [
            (state, entry)
            for state, entry in tracker.find_holders(self)
            if bool(entry[1] & READ) == read
        ]
        if read:
            # Not owner-checked: a reader may be released on another's behalf.
            if holders:
                tracker.remove_from(holders[0][0], self)
            raw()
            return
        if self._writer is not None and not holders:
            raw()  # taken while untracked
            return
        tracker.report_unlock(self, self._tkey, frame)
        if holders:
            tracker.remove_from(holders[0][0], self)
            raw()

    def _raw_write(self, blocking: bool, timeout: float) -> bool:
        with self._cond:
            if self._writer is None and not self._readers:
                self._writer = _thread.get_ident()
                return True
            if not blocking:
                return False
            self._writers_waiting += 1
            try:
                ok = self._cond.wait_for(
                    lambda: self._writer is None and not self._readers,
                    None if timeout < 0 else timeout,
                )
            finally:
                self._writers_waiting -= 1
            if ok:
                self._writer = _thread.get_ident()
            else:
                self._cond.notify_all()  # readers held back by this writer may go
            return ok

    def _raw_read(self, blocking: bool, timeout: float) -> bool:
        with self._cond:
            if self._writer is None and not self._writers_waiting:
                self._readers += 1
                return True
            if not blocking:
                return False
            ok = self._cond.wait_for(
                lambda: self._writer is None and not self._writers_waiting,
                None if timeout < 0 else timeout,
            )
            if ok:
                self._readers += 1
            return ok

    def _raw_unlock_write(self) -> None:
        with self._cond:
            if self._writer is None:
                raise RuntimeError(f"SharedMutex {self._name!r}: unlock of a write side not held")
            self._writer = None
            self._cond.notify_all()

    def _raw_unlock_read(self) -> None:
        with self._cond:
            if not self._readers:
                raise RuntimeError(f"SharedMutex {self._name!r}: unlock_shared with no reader")
            self._readers -= 1
            if not self._readers:
                self._cond.notify_all()


class _Guard:
    __slots__ = ("_mutex", "_read")

    def __init__(self, mutex: SharedMutex, read: bool) -> None:
        self._mutex = mutex
        self._read = read

    def __enter__(self) -> SharedMutex:
        self._mutex._take(self._read, True, -1.0, _getframe(1))
        return self._mutex

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._mutex._give(self._read, _getframe(1))
