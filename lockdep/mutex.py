"""``Mutex``: a lock with a lockdep class (Ceph's ``ceph::mutex_debug``).

``Mutex("osd_lock")`` belongs to the class ``osd_lock``, shared with every other
instance of that name. Taking it while holding other tracked locks records the
order; an acquisition that would close a cycle, or take a class (and subclass)
the thread already holds, is reported before the thread blocks.

Hot path. ``with m:``, ``lock()`` and ``unlock()`` are the methods of the current
mode, installed on the class when the configuration changes:

* ``fast`` (lockdep on, no statistics, backtraces or wait timeouts): one lookup
  in the chain cache; when this held chain plus this class was validated
  before, the lock is taken and pushed with no further work. These methods
  exist twice, in Python here and in C (see ``fastpath``), which is used when
  it is built; a miss calls the same Python slow path from both;
* ``checked``: every acquisition goes through the tracker (statistics, stacks,
  wait-timeout reports);
* ``plain`` (lockdep off, or the class limit reached): the bare lock.

Swapping methods rather than testing the mode on every call is what keeps the
disabled lock within 1.5x of ``threading.Lock``.

Ownership. A tracked acquisition is on its thread's held stack; one lockdep
does not track (lockdep off, a ``lockdep=False`` instance, the class limit
reached) records its owner in ``_owner`` instead, so ``is_locked_by_me()`` tells
the truth in every mode (recursive mutexes: the interpreter's RLock knows).
"""

from __future__ import annotations

import _thread
import sys
from collections.abc import Callable
from types import FrameType, TracebackType

from . import chains, fastpath
from .chains import Chain
from .fastpath import LockCore
from .held import CHAIN, LOCK, TKEY, Entry, pop_top
from .keys import CLASS_STRIDE, READ, SUBCLASS_STRIDE, TRY, check_subclass, subclass_key
from .tracker import INSTANCES, LOCKDEP, STRICT

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

_getframe = sys._getframe
_get_ident = _thread.get_ident
TIMEOUT_MAX = _thread.TIMEOUT_MAX
_local = LOCKDEP.local


def caller_frame() -> FrameType | None:
    """The frame of the code that called the lock method calling this; None when C code
    called the method with no Python frame on the stack (an atexit callback, say)."""
    try:
        return _getframe(2)
    except ValueError:
        return None


def check_name(kind: str, name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"{kind} name must be a non-empty str, got {name!r}")
    if not name:
        raise ValueError(f"{kind} name must be a non-empty str, got ''")
    return name


def check_flag(what: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be True or False, got {value!r}")
    return value


def check_acquire_args(blocking: object, timeout: object) -> float:
    """threading.Lock.acquire's rules for blocking and timeout; returns the timeout."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number, got {timeout!r}")
    if not blocking and timeout != -1:
        raise ValueError("can't specify a timeout for a non-blocking call")
    if timeout < 0 and timeout != -1:
        raise ValueError(f"timeout value must be a non-negative number or -1, got {timeout!r}")
    if timeout > TIMEOUT_MAX:
        raise OverflowError(f"timeout value is too large (the most is {TIMEOUT_MAX})")
    return float(timeout)


class Mutex(LockCore):
    """A mutual-exclusion lock whose acquisitions lockdep validates.

    ``Mutex(name, recursive=False, lockdep=True, backtrace=False,
    instance_order=False)``. ``name`` is the lock class. A recursive mutex may
    be re-entered by its owner. With ``lockdep=False`` this instance is never
    tracked; with ``backtrace=True`` each acquisition records its full stack for
    reports.

    Two instances of one class nested in each other are recursion (Linux's
    rule; a subclass, ``nested(n)``, says the nesting is intended), unless
    ``instance_order=True``: then lockdep keeps an order between the live
    instances of the class, as for ``threading`` locks under ``install()``, and
    reports a cycle among them (``transfer(a, b)`` here, ``transfer(b, a)``
    there) while consistent orders (by index, by ``id()``) pass.

    Thread-safe. Only the owner may release it: a release by another thread
    is an ``unlock`` violation.
    """

    # The fields are LockCore's (see fastpath), and so is the finalizer that gives
    # back the class reference (_id) and the instance number when collected.
    __slots__ = ("__weakref__",)

    def __init__(
        self,
        name: str,
        recursive: bool = False,
        lockdep: bool = True,
        backtrace: bool = False,
        instance_order: bool = False,
    ) -> None:
        self._id = -1
        self._owner = 0  # ident of an untracked holder (see the module docstring)
        self._lockdep_node = 0  # the tracker's: instance number (see tracker)
        self._lockdep_pos = 0  # the tracker's: where on the held stack (see held)
        self._name = check_name("Mutex", name)
        self._recursive = check_flag("recursive", recursive)
        check_flag("lockdep", lockdep)
        self._backtrace = check_flag("backtrace", backtrace)
        self._policy = INSTANCES if check_flag("instance_order", instance_order) else STRICT
        self._lock = _thread.RLock() if recursive else _thread.allocate_lock()
        if lockdep:
            self._id = LOCKDEP.register(name)
        self._set_keys()

    def _set_keys(self) -> None:
        self._tkey = self._id * CLASS_STRIDE if self._id >= 0 else None
        # The fast path only serves instances it can serve completely.
        self._fkey = self._tkey if not self._backtrace else None

    @property
    def name(self) -> str:
        return self._name

    @property
    def recursive(self) -> bool:
        return self._recursive

    def close(self) -> None:
        """Drop this instance's reference to its class now (rather than when collected).

        The mutex stays usable, untracked. RuntimeError if it is locked.
        """
        if self.is_locked():
            raise RuntimeError(f"cannot close Mutex {self.name!r} while it is locked")
        if self._id >= 0:
            cid, self._id = self._id, -1
            self._set_keys()
            LOCKDEP.unregister(cid)

    def __repr__(self) -> str:
        state = "locked" if self.is_locked() else "unlocked"
        kind = "recursive " if self._recursive else ""
        return f"<lockdep.Mutex {kind}{self.name!r} {state} at {id(self):#x}>"

    # --- the mode-dependent methods (fast versions; see _use_mode) -------------

    def lock(self, subclass: int = 0) -> None:
        """Take the mutex, blocking; subclass (0..7) marks intended nesting of one class."""
        held = _local.held
        key = self._fkey
        if subclass:
            key = subclass_key(key, subclass)
        nxt = held[-1][2].get(key)
        if nxt is None:
            self._acquire_slow(subclass, True, -1.0, caller_frame())
            return
        try:
            f = _getframe(1)
        except ValueError:  # no Python caller: the tracker records no site
            self._acquire_slow(subclass, True, -1.0, None)
            return
        self._lock.acquire()
        held.append((self, key, nxt, f.f_code, f.f_lasti, None))  # type: ignore[arg-type]

    def unlock(self) -> None:
        """Release the mutex; the calling thread must hold it."""
        held = _local.held
        if held[-1][0] is self:
            held.pop()
            self._lock.release()
        else:
            self._release_slow(caller_frame())

    def __enter__(self) -> Mutex:
        held = _local.held
        key = self._fkey
        nxt = held[-1][2].get(key)
        if nxt is None:
            self._acquire_slow(0, True, -1.0, caller_frame())
            return self
        try:
            f = _getframe(1)
        except ValueError:  # no Python caller: the tracker records no site
            self._acquire_slow(0, True, -1.0, None)
            return self
        self._lock.acquire()
        held.append((self, key, nxt, f.f_code, f.f_lasti, None))  # type: ignore[arg-type]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        held = _local.held
        if held[-1][0] is self:
            held.pop()
            self._lock.release()
        else:
            self._release_slow(caller_frame())

    release = unlock

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """threading.Lock-compatible: returns whether the mutex was taken.

        A non-blocking acquire is a trylock (no ordering check), and so is
        ``timeout=0``, which never waits; an acquire with any other timeout is a
        blocking acquisition for ordering.
        """
        if blocking is True and timeout == -1:
            held = _local.held
            key = self._fkey
            nxt = held[-1][2].get(key)
            if nxt is not None:
                try:
                    f = _getframe(1)
                except ValueError:  # no Python caller: the tracker records no site
                    return self._acquire_slow(0, True, -1.0, None)
                self._lock.acquire()
                held.append((self, key, nxt, f.f_code, f.f_lasti, None))  # type: ignore[arg-type]
                return True
        return self._acquire_args(blocking, timeout, caller_frame())

    def try_lock(self) -> bool:
        """Take the mutex if it is free; never blocks, never checked for order."""
        key = self._fkey
        if key is not None:
            # A trylock is never checked: only its cached chain node is needed.
            held = _local.held
            nxt = held[-1][2].get(key | TRY)
            if nxt is not None:
                if not self._lock.acquire(False):
                    return False
                try:
                    f = _getframe(1)
                except ValueError:  # no Python caller: no site to record
                    held.append((self, key | TRY, nxt, None, -1, None))
                else:
                    held.append((self, key | TRY, nxt, f.f_code, f.f_lasti, None))
                return True
        return self._acquire_slow(0, False, -1.0, caller_frame())

    # --- mode-independent API ---------------------------------------------------

    def nested(self, subclass: int) -> _Nested:
        """A context manager taking this mutex under subclass (Linux's ``*_nested``)."""
        return _Nested(self, check_subclass(subclass))

    def is_locked(self) -> bool:
        lock = self._lock
        if not self._recursive:
            return bool(lock.locked())
        if lock._is_owned():
            return True
        if lock.acquire(False):
            lock.release()
            return False
        return True

    locked = is_locked

    def is_locked_by_me(self) -> bool:
        """Whether the calling thread holds the mutex, in every mode."""
        if self._recursive:
            return bool(self._lock._is_owned())
        if self._owner == _get_ident():
            return True
        return any(entry[0] is self for entry in _local.held)

    # --- slow paths -------------------------------------------------------------

    def _acquire_args(self, blocking: bool, timeout: float, frame: FrameType | None) -> bool:
        timeout = check_acquire_args(blocking, timeout)
        if timeout == 0:
            return self._acquire_slow(0, False, -1.0, frame)  # never waits: a trylock
        return self._acquire_slow(0, bool(blocking), timeout, frame)

    def _site_frame(self, frame: FrameType | None) -> FrameType | None:
        """The frame whose line an acquisition records (install()'s locks skip wrappers)."""
        return frame

    def _acquire_slow(
        self, subclass: int, blocking: bool, timeout: float, frame: FrameType | None
    ) -> bool:
        tkey = self._tkey
        if tkey is not None and subclass:
            tkey += subclass * SUBCLASS_STRIDE
        got = LOCKDEP.acquire(
            self,
            self._lock.acquire,
            tkey,
            blocking,
            timeout,
            self._site_frame(frame),
            recursive=self._recursive,
            backtrace=self._backtrace,
            policy=self._policy,
        )
        if got and _local.held[-1][0] is not self:
            self._owner = _get_ident()  # taken untracked
        return got

    def _release_slow(self, frame: FrameType | None) -> None:
        tracker = LOCKDEP
        lock = self._lock
        self._owner = 0
        if (
            tracker.pop_entry(self) is not None
            or self._tkey is None
            or not tracker.tracking
            or tracker.local.state.busy
        ):
            lock.release()
            return
        # Lockdep has no record of this thread holding it.
        if self._recursive:
            if lock._is_owned():
                lock.release()  # taken while untracked
                return
        elif lock.locked() and not tracker.find_holders(self):
            lock.release()  # taken while untracked
            return
        tracker.report_unlock(self, self._tkey, frame)
        # Not raised (log, or a callable): go on as a plain lock would, keeping
        # lockdep's records consistent.
        if not self._recursive and lock.locked():
            for state, _entry in tracker.find_holders(self):
                tracker.remove_from(state, self)
            lock.release()

    # --- Cond support -------------------------------------------------------------

    def _release_save(self) -> tuple[list[Entry], Any]:
        """Release completely (all re-entries) for a Cond wait."""
        entries: list[Entry] = []
        mode = LOCKDEP.mode
        held = _local.held
        if mode == "fast" and _only_on_top(held, self):
            # What pop_entry does for the top entry (no statistics in this mode).
            entries.append(pop_top(held))
        elif mode != "plain":
            while (entry := LOCKDEP.pop_entry(self)) is not None:
                entries.append(entry)
        self._owner = 0
        if self._recursive:
            return entries, self._lock._release_save()
        self._lock.release()
        return entries, None

    def _acquire_restore(
        self, saved: tuple[list[Entry], Any], frame: FrameType | None = None
    ) -> None:
        """Re-take after a Cond wait; lockdep validates the re-take like any acquisition.

        frame: the site to record, by default the caller's caller (the code that
        called wait, when threading.Condition calls this).
        """
        frame = self._site_frame(frame if frame is not None else _getframe(2))
        entries, raw_state = saved
        if len(entries) == 1 and self._restored_cached(entries[0], raw_state, frame):
            return
        restore = self._raw_restore(raw_state)
        if not entries or not LOCKDEP.tracking:
            restore(True, -1.0)
            self._owner = _get_ident()  # taken untracked
            return
        first = True
        for entry in reversed(entries):
            tkey = entry[TKEY] & ~(TRY | READ)
            try:
                LOCKDEP.acquire(
                    self,
                    restore if first else _already_taken,
                    tkey,
                    True,
                    -1.0,
                    frame,
                    recursive=self._recursive,
                    backtrace=self._backtrace,
                    policy=self._policy,
                )
            except BaseException:
                if first:
                    # The caller expects to hold the mutex after a wait, whatever
                    # lockdep said: take it, and record it on a detached chain.
                    restore(True, -1.0)
                    held = LOCKDEP.local.held
                    LOCKDEP.locked(held, self, tkey, chains.advance(held[-1][2], tkey), frame)
                raise
            first = False
            if not self._recursive:
                break

    def _restored_cached(self, entry: Entry, raw_state: Any, frame: FrameType | None) -> bool:
        """The re-take of one entry when its chain is cached (the tracker's fast mode,
        inline: no check to make); False, with nothing done, when it is not."""
        tkey = entry[TKEY] & ~(TRY | READ)
        held = _local.held
        nxt = held[-1][CHAIN].get(tkey)
        if nxt is None or LOCKDEP.mode != "fast" or self._backtrace or _local.state.busy:
            return False
        try:
            self._retake_raw(raw_state)
        except BaseException:
            # As _acquire_restore: held after a wait, whatever happened.
            self._retake_raw(raw_state)
            self._push_restored(held, tkey, nxt, frame)
            raise
        self._push_restored(held, tkey, nxt, frame)
        return True

    def _push_restored(
        self, held: list[Entry], tkey: int, node: Chain, frame: FrameType | None
    ) -> None:
        """tracker.locked, inline, for a re-take after a wait (fast mode: no extra)."""
        self._lockdep_pos = len(held)
        if frame is None:
            held.append((self, tkey, node, None, -1, None))
        else:
            held.append((self, tkey, node, frame.f_code, frame.f_lasti, None))

    def _retake_raw(self, raw_state: Any) -> None:
        """Take the raw lock again after a wait (an RLock with its recursion count)."""
        if self._recursive:
            self._lock._acquire_restore(raw_state)
        else:
            self._lock.acquire()

    def _raw_restore(self, raw_state: Any) -> Callable[[bool, float], bool]:
        """_retake_raw as the tracker's raw acquire."""
        if not self._recursive:
            return self._lock.acquire  # type: ignore[no-any-return]

        def restore(_blocking: bool, _timeout: float) -> bool:
            self._retake_raw(raw_state)
            return True

        return restore


def _only_on_top(held: list[Entry], lock: object) -> bool:
    """Whether lock's only entry (in write mode) on held is its top one."""
    top = held[-1]
    if top[LOCK] is not lock or top[TKEY] & READ:
        return False
    return len(held) == 2 or all(entry[LOCK] is not lock for entry in held[1:-1])


def _already_taken(_blocking: bool, _timeout: float) -> bool:
    return True


class _Nested:
    """``with mutex.nested(n):`` — take mutex under subclass n."""

    __slots__ = ("_mutex", "_subclass")

    def __init__(self, mutex: Mutex, subclass: int) -> None:
        self._mutex = mutex
        self._subclass = subclass

    def __enter__(self) -> Mutex:
        mutex = self._mutex
        if LOCKDEP.tracking:
            mutex._acquire_slow(self._subclass, True, -1.0, caller_frame())
        else:
            _plain_enter(mutex)
        return mutex

    def __exit__(self, *exc: object) -> None:
        mutex = self._mutex
        if LOCKDEP.tracking:
            mutex._release_slow(caller_frame())
        else:
            _plain_exit(mutex, None, None, None)


# --- the other modes' methods ---------------------------------------------------


def _checked_try_lock(self: Mutex) -> bool:
    return self._acquire_slow(0, False, -1.0, caller_frame())


def _plain_try_lock(self: Mutex) -> bool:
    if self._lock.acquire(False):
        self._owner = _get_ident()
        return True
    return False


def _checked_lock(self: Mutex, subclass: int = 0) -> None:
    if subclass:
        check_subclass(subclass)
    self._acquire_slow(subclass, True, -1.0, caller_frame())


def _checked_unlock(self: Mutex) -> None:
    self._release_slow(caller_frame())


def _checked_enter(self: Mutex) -> Mutex:
    self._acquire_slow(0, True, -1.0, caller_frame())
    return self


def _checked_exit(self: Mutex, exc_type: object, exc: object, tb: object) -> None:
    self._release_slow(caller_frame())


def _checked_acquire(self: Mutex, blocking: bool = True, timeout: float = -1) -> bool:
    return self._acquire_args(blocking, timeout, caller_frame())


# Plain mode records the owner (is_locked_by_me). A recursive mutex's RLock
# knows its owner, so its _owner is never read: it is written anyway, which is
# cheaper than testing whether to.


def _plain_acquire(self: Mutex, blocking: bool = True, timeout: float = -1) -> bool:
    if self._lock.acquire(blocking, timeout):
        self._owner = _get_ident()
        return True
    return False


def _plain_lock(self: Mutex, subclass: int = 0) -> None:
    if subclass:
        check_subclass(subclass)
    self._lock.acquire()
    self._owner = _get_ident()


def _plain_unlock(self: Mutex) -> None:
    self._owner = 0
    self._lock.release()


def _plain_enter(self: Mutex) -> Mutex:
    self._lock.acquire()
    self._owner = _get_ident()
    return self


def _plain_exit(self: Mutex, exc_type: object, exc: object, tb: object) -> None:
    self._owner = 0
    self._lock.release()


MODES: dict[str, dict[str, Callable[..., Any]]] = {
    "fast": {
        "acquire": Mutex.acquire,
        "try_lock": Mutex.try_lock,
        "lock": Mutex.lock,
        "unlock": Mutex.unlock,
        "release": Mutex.unlock,
        "__enter__": Mutex.__enter__,
        "__exit__": Mutex.__exit__,
    },
    "checked": {
        "acquire": _checked_acquire,
        "try_lock": _checked_try_lock,
        "lock": _checked_lock,
        "unlock": _checked_unlock,
        "release": _checked_unlock,
        "__enter__": _checked_enter,
        "__exit__": _checked_exit,
    },
    "plain": {
        "acquire": _plain_acquire,
        "try_lock": _plain_try_lock,
        "lock": _plain_lock,
        "unlock": _plain_unlock,
        "release": _plain_unlock,
        "__enter__": _plain_enter,
        "__exit__": _plain_exit,
    },
}


def _use_mode(mode: str) -> None:
    if mode == "plain":
        # The tracker forgets the held stacks next: their mutexes keep their owner.
        for state in LOCKDEP.states():
            for entry in state.held[1:]:
                lock = entry[0]
                if isinstance(lock, Mutex) and not lock._recursive:
                    lock._owner = state.ident
    methods = fastpath.methods("mutex", mode) or MODES[mode]
    for name, method in methods.items():
        setattr(Mutex, name, method)


LOCKDEP.add_mode_listener(_use_mode)
