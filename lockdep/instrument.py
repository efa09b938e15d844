"""lockdep for code nobody annotated: ``install()`` tracks ``threading``'s locks.

After ``install()``, ``threading.Lock()``, ``threading.RLock()`` and
``threading.Condition()`` (and therefore ``queue``, ``concurrent.futures``,
``logging``, ... whenever they make a lock) create tracked locks whose class is
their role: the allocation site, refined by the object the lock is made for
(see ``roles``). ``asyncio.Lock`` is tracked too, per task (see ``aio``).
``uninstall()`` puts the originals back; tracked locks made meanwhile keep
working. Locks the standard library made before ``install()`` are adopted
where that is safe (see ``adopt``).

Instances of one class held inside each other (per-object locks, lock arrays,
``transfer(a, b)``) are ordered among themselves: a cycle among them is an
order violation, consistent orders are not (see ``tracker``).

The tracked locks keep the standard library's semantics exactly:

* a ``Lock`` may be released by another thread (a binary semaphore): lockdep
  moves it off its taker's held stack and remembers its class as a semaphore;
  a blocking acquire of a ``Lock`` its thread holds is a self-deadlock,
  reported before it blocks, unless its class was seen used as a semaphore;
  ``acquire(timeout=0)`` never waits, so it is a trylock;
* ``RLock`` counts re-entries, is owner-checked by the interpreter, and has the
  private methods ``threading.Condition`` uses (``_is_owned``,
  ``_release_save``, ``_acquire_restore``, ``_recursion_count`` where the
  interpreter's has it);
* ``_at_fork_reinit`` and ``locked`` exist, ``repr`` shows the state, and from
  3.13 ``threading.Lock`` is a type, as there.

Sites. An acquisition records the line of the code that asked for it: frames
of the standard library's thin wrappers (``Condition.__enter__`` and
``wait_for``, ``Handler.acquire``, ``queue.Queue.get``, ``Future.result``, ...)
are skipped, so that reports name the user's line (see ``sites``).
"""

from __future__ import annotations

import _thread
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType, ModuleType

from . import fastpath
from .keys import CLASS_STRIDE, READ, TRY
from .mutex import MODES, Mutex, caller_frame
from .roles import FAST, class_tkey
from .sites import THIN_WRAPPERS, user_frame
from .tracker import BINARY, INSTANCES, LOCKDEP

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from typing import Any

_getframe = sys._getframe
_get_ident = _thread.get_ident
_local = LOCKDEP.local
_tracker = LOCKDEP
_tracker_acquire = LOCKDEP.acquire
_pop_entry = LOCKDEP.pop_entry
_validated_again = LOCKDEP.checker.validated_again

_ORIGINALS: dict[str, Any] = {
    "Lock": threading.Lock,
    "RLock": threading.RLock,
    "Condition": threading.Condition,
}

# Up to 3.12 threading.Lock is a factory function and its type cannot be
# instantiated; from 3.13 threading.Lock is the type itself (``Lock | None``,
# ``Lock()``). The tracked lock follows whichever the interpreter does.
LOCK_IS_TYPE = isinstance(_ORIGINALS["Lock"], type)


class TrackedLock(Mutex):
    """``threading.Lock()`` after ``install()``: a lock whose class is its role.

    Made by ``threading.Lock()`` only: like ``_thread.lock`` up to 3.12, the
    type itself cannot be instantiated (from 3.13, see ``_InstalledLock``).
    """

    __slots__ = ()

    def __new__(cls, *args: object, **kwargs: object) -> TrackedLock:
        raise TypeError(f"cannot create '{cls.__module__}.{cls.__qualname__}' instances")

    def __init__(self) -> None:  # pragma: no cover - __new__ refuses
        raise TypeError("use threading.Lock()")

    @classmethod
    def _make(cls, frame: FrameType) -> TrackedLock:
        """A new lock of this type made at frame (what the C maker does, see fastpath)."""
        lock = object.__new__(cls)
        recursive = issubclass(cls, TrackedRLock)
        raw = _thread.RLock() if recursive else _thread.allocate_lock()
        lock._init_tracked(raw, class_tkey(frame), recursive)
        return lock

    @classmethod
    def adopting(cls, tkey: int | None) -> TrackedLock:
        """A new tracked lock of class tkey, to stand for one made before install()."""
        lock = object.__new__(cls)
        lock._init_tracked(
            _thread.RLock() if cls is TrackedRLock else _thread.allocate_lock(),
            tkey,
            cls is TrackedRLock,
        )
        return lock

    def _init_tracked(self, raw: Any, tkey: int | None, recursive: bool) -> None:
        # Mutex.__init__ registers a named class; a role class is registered once,
        # by roles, and kept.
        self._id = -1  # no reference of its own to drop
        self._owner = 0
        self._lockdep_node = 0
        self._lockdep_pos = 0
        self._lock = raw
        self._recursive = recursive
        self._policy = INSTANCES if recursive else BINARY
        self._backtrace = False
        self._tkey = self._fkey = tkey
        self._name = ""  # the class name is looked up when needed (see name)

    @property
    def name(self) -> str:
        tkey = self._tkey
        return LOCKDEP.name_of(tkey // CLASS_STRIDE) if tkey is not None else "untracked"

    def __repr__(self) -> str:
        state = "locked" if self.is_locked() else "unlocked"
        return f"<{state} lockdep.TrackedLock object (class {self.name}) at {id(self):#x}>"

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """threading.Lock.acquire (the fast version: see _use_mode)."""
        if blocking is True and timeout == -1:
            held = _local.held
            key = self._fkey
            nxt = held[-1][2].get(key)
            try:
                f = _getframe(1)
            except ValueError:  # no Python caller: the tracker records no site
                return self._acquire_missed(None)
            if f.f_code.co_filename in THIN_WRAPPERS:
                f = user_frame(f)
            if nxt is not None:
                self._lock.acquire()
                held.append((self, key, nxt, f.f_code, f.f_lasti, None))  # type: ignore[arg-type]
                return True
            node = held[-1][2]
            if key is not None and _validated_again(self, key, held, node):  # a held class
                self._lock.acquire()
                self._lockdep_pos = len(held)
                held.append((self, key, node, f.f_code, f.f_lasti, None))
                return True
            return self._acquire_missed(f)
        return self._acquire_args(blocking, timeout, caller_frame())

    def _acquire_missed(self, frame: FrameType | None) -> bool:
        """A blocking acquire the fast path could not serve (a class the thread holds
        already, say): to the tracker at once. frame: the site, wrappers skipped."""
        got = _tracker_acquire(
            self,
            self._lock.acquire,
            self._tkey,
            True,
            -1.0,
            frame,
            policy=self._policy,
            recursive=self._recursive,
        )
        if got and _local.held[-1][0] is not self:
            self._owner = _get_ident()  # taken untracked
        return got

    __enter__ = acquire  # type: ignore[assignment]

    def release(self) -> None:
        """threading.Lock.release (the fast version: see _use_mode)."""
        held = _local.held
        if held[-1][0] is self:
            held.pop()
            self._lock.release()
        else:
            self._release_slow(None)  # no unlock report here: no frame needed

    def __exit__(self, *exc: object) -> None:
        held = _local.held
        if held[-1][0] is self:
            held.pop()
            self._lock.release()
        else:
            self._release_slow(None)

    def _site_frame(self, frame: FrameType | None) -> FrameType | None:
        return user_frame(frame) if frame is not None else None

    def _is_owned(self) -> bool:
        # What threading.Condition would find out with acquire(False) and
        # release(): a Lock has no owner, so "owned" means locked.
        return bool(self._lock.locked())

    def _release_slow(self, frame: FrameType | None) -> None:
        # Not owner-checked: a lock released by another thread leaves its holder's
        # stack, and its class is known from then on as a binary semaphore.
        tracker = LOCKDEP
        self._owner = 0
        if tracker.pop_entry(self) is None and self._tkey is not None and tracker.tracking:
            for state, _entry in tracker.find_holders(self):
                tracker.remove_from(state, self)
                tracker.note_semaphore(self._tkey)
                break
        self._lock.release()

    def _at_fork_reinit(self) -> None:
        if LOCKDEP.tracking:
            while LOCKDEP.pop_entry(self) is not None:
                pass
        self._owner = 0
        self._lock._at_fork_reinit()


class TrackedRLock(TrackedLock):
    """``threading.RLock()`` after ``install()`` (instantiable, like ``_thread.RLock``)."""

    __slots__ = ()

    def __new__(cls, *args: object, **kwargs: object) -> TrackedRLock:
        return object.__new__(cls)

    def __init__(self, frame: FrameType | None = None) -> None:
        self._init_tracked(_thread.RLock(), class_tkey(frame or _getframe(1)), True)

    def __repr__(self) -> str:
        # The interpreter's repr knows the owner and count, also of another thread.
        raw = repr(self._lock)
        return raw.replace(
            "_thread.RLock object", f"lockdep.TrackedRLock object (class {self.name})"
        )

    def _release_slow(self, frame: FrameType | None) -> None:
        # The interpreter checks the owner (RuntimeError for another thread).
        if _tracker.mode != "plain":
            _pop_entry(self)
        self._lock.release()

    def _is_owned(self) -> bool:
        return bool(self._lock._is_owned())

    if hasattr(_thread.RLock(), "_recursion_count"):  # 3.11+, as the interpreter's RLock

        def _recursion_count(self) -> int:
            return int(self._lock._recursion_count())


class TrackedCondition(threading.Condition):
    """``threading.Condition()`` after ``install()``: without a lock, its RLock's class is
    the role of the code making the Condition (not a line inside threading.py shared
    by all)."""

    def __init__(self, lock: Any = None) -> None:
        if lock is None:
            lock = _make_at(TrackedRLock, 1)
        super().__init__(lock)


class _InstalledCondition(TrackedCondition):
    """TrackedCondition as threading.Condition: it passes for threading's own name."""

    __module__ = "threading"


class _InstalledLock(TrackedLock):
    """TrackedLock as ``threading.Lock`` where that is a type (3.13+): instantiable,
    final, and passing for threading's own name (its ``__all__`` test checks)."""

    __slots__ = ()
    __module__ = "threading"

    def __new__(cls, *args: object, **kwargs: object) -> _InstalledLock:
        if args or kwargs:
            raise TypeError("lock() takes no arguments")
        return _make_at(cls, 1)  # type: ignore[no-any-return]

    def __init__(self) -> None:
        pass  # made by __new__

    def __init_subclass__(cls, **kwargs: object) -> None:
        raise TypeError("type 'lock' is not an acceptable base type")


# What install() puts in threading. They pass for threading's own names there
# (its __all__ test checks that they belong to the module).


def Lock() -> TrackedLock:
    """A new tracked lock, of the class of the calling code's role."""
    return TrackedLock._make(_getframe(1))


# 3.13+ warns when arguments are passed to threading.RLock (gh-102029).
_RLOCK_WARNS = sys.version_info >= (3, 13)


def RLock(*args: object, **kwargs: object) -> TrackedRLock:
    """A new tracked re-entrant lock, of the class of the calling code's role."""
    if _RLOCK_WARNS and (args or kwargs):
        import warnings  # imported at start-up: no lock made here

        warnings.warn(
            "Passing arguments to RLock is deprecated and will be removed in 3.15",
            DeprecationWarning,
            stacklevel=2,
        )
    return TrackedRLock._make(_getframe(1))  # type: ignore[return-value]


for _factory in (Lock, RLock):
    _factory.__module__ = "threading"


def _python_make_at(cls: type[TrackedLock], depth: int) -> TrackedLock:
    """A new lock of type cls made at the frame depth levels above the caller's."""
    return cls._make(_getframe(depth + 1))


# The C makers (see fastpath): threading.Lock and RLock as install() puts them,
# and make(cls, depth). In use while the C hot path is (see _use_mode).
_C_MAKERS = fastpath.bind_makers(
    lock_type=TrackedLock,
    rlock_type=TrackedRLock,
    lock_policy=BINARY,
    rlock_policy=INSTANCES,
    class_tkey=class_tkey,
    sites=FAST,
    python_lock=Lock,
    python_rlock=RLock,
)
_make_at: Callable[[type[TrackedLock], int], Any] = _python_make_at

# threading.Condition's wait methods of install()'s locks: in C where the hot path
# is built (they call Mutex's for what they do not serve, see fastpath.bind_waits).
_C_WAITS = fastpath.bind_waits(
    release_save=Mutex._release_save,
    acquire_restore=Mutex._acquire_restore,
    retake_mask=~(TRY | READ),
    read_flag=READ,
)
if _C_WAITS is not None:
    for _name, _method in _C_WAITS.items():
        setattr(TrackedLock, _name, _method)


class _PatchAfterExec:
    """A loader: runs asyncio's own loader, then tracks asyncio.Lock."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        if _installed:
            from . import aio

            aio.patch()


class _AsyncioHook:
    """A meta path finder: tracks asyncio.Lock when asyncio is first imported, so
    that install() does not import asyncio (slowing down programs that never use it)."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name != "asyncio":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _PatchAfterExec(spec.loader)  # type: ignore[assignment]
                return spec
        return None


_HOOK = _AsyncioHook()
_installed = False


def install() -> None:
    """Make ``threading.Lock/RLock/Condition`` (and ``asyncio.Lock``) tracked. Idempotent.

    Locks made before stay untracked, except the standard library's that can
    be adopted (``logging``'s module lock and its handlers' locks, see
    ``adopt``); so do names imported with ``from threading import Lock`` before.
    Call it early, before the program starts its threads.
    """
    global _installed
    if _installed:
        return
    _installed = True
    _replace(**_factories(), Condition=_InstalledCondition)
    from .adopt import adopt

    adopt()
    if "asyncio" in sys.modules:
        from . import aio

        aio.patch()
    elif _HOOK not in sys.meta_path:
        sys.meta_path.insert(0, _HOOK)


def uninstall() -> None:
    """Put the original ``threading`` (and ``asyncio``) factories back. Idempotent."""
    global _installed
    if not _installed:
        return
    _installed = False
    _replace(**_ORIGINALS)
    if _HOOK in sys.meta_path:
        sys.meta_path.remove(_HOOK)
    if "lockdep.aio" in sys.modules:
        from . import aio

        aio.unpatch()


def _factories() -> dict[str, Any]:
    """What install() puts in threading for Lock and RLock: C's makers with the C hot path."""
    c = _C_MAKERS if fastpath.active() == "c" else None
    if LOCK_IS_TYPE:
        return {"Lock": _InstalledLock, "RLock": c[1] if c is not None else RLock}
    return {"Lock": c[0], "RLock": c[1]} if c is not None else {"Lock": Lock, "RLock": RLock}


def _replace(**factories: object) -> None:
    for name, factory in factories.items():
        setattr(threading, name, factory)


def installed() -> bool:
    return _installed


_FAST_ACQUIRE = TrackedLock.acquire


_FAST_RELEASE = TrackedLock.release
_FAST_EXIT = TrackedLock.__exit__
_PYTHON_OWNED: dict[str, Any] = {"lock": TrackedLock._is_owned, "rlock": TrackedRLock._is_owned}


def _use_mode(mode: str) -> None:
    # threading's locks return True from __enter__: it is their acquire(). The
    # fast one skips thin wrappers' frames; the others do it in _site_frame.
    # The fast release passes no frame to the slow one: a Lock has no unlock report.
    # The makers follow the implementation (C or Python), whatever the mode.
    global _make_at
    c = _C_MAKERS is not None and fastpath.active() == "c"
    _make_at = _C_MAKERS[2] if c and _C_MAKERS is not None else _python_make_at
    if _installed:
        _replace(**_factories())
    fast = mode == "fast"
    methods = fastpath.methods("tracked", mode)
    if methods is None:
        acquire: Callable[..., Any] = _FAST_ACQUIRE if fast else MODES[mode]["acquire"]
        methods = {
            "acquire": acquire,
            "__enter__": acquire,
            "release": _FAST_RELEASE if fast else MODES[mode]["release"],
            "__exit__": _FAST_EXIT if fast else MODES[mode]["__exit__"],
        }
    for name, method in methods.items():
        setattr(TrackedLock, name, method)  # methods swapped per mode
    fastpath.wait_mode(mode)
    # Condition's _is_owned, at every notify: in C where the hot path is.
    owned = fastpath.owned_methods() or _PYTHON_OWNED
    TrackedLock._is_owned = owned["lock"]  # type: ignore[method-assign]
    TrackedRLock._is_owned = owned["rlock"]  # type: ignore[method-assign]


LOCKDEP.add_mode_listener(_use_mode)
