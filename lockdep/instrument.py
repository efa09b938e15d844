"""lockdep for code nobody annotated: ``install()`` tracks ``threading``'s locks.

After ``install()``, ``threading.Lock()``, ``threading.RLock()`` and
``threading.Condition()`` (and therefore ``queue``, ``concurrent.futures``,
``logging``, ... whenever they make a lock) create tracked locks whose class is
the allocation site: the file and line that asked for the lock. A lock made
inside the standard library has its class there (every ``queue.Queue`` mutex is
one class), which is what the ordering between library and program needs.
``asyncio.Lock`` is tracked too, per task (see ``aio``). ``uninstall()`` puts
the originals back; tracked locks made meanwhile keep working.

The tracked locks keep the standard library's semantics exactly:

* a ``Lock`` may be taken again by its holder and released by another thread
  (a binary semaphore): no violation, and lockdep moves a lock released on
  another thread's behalf off that thread's held stack;
* instances of one class held inside each other (a logging handler flushing
  into another) are nested by depth, as a ``nested(n)`` annotation would do,
  instead of being reported as recursion: code nobody annotated cannot say
  that it means it, and false positives are bugs;
* ``RLock`` counts re-entries, is owner-checked by the interpreter, and has the
  private methods ``threading.Condition`` uses (``_is_owned``,
  ``_release_save``, ``_acquire_restore``, ``_recursion_count``);
* ``_at_fork_reinit`` and ``locked`` exist where the originals have them, and
  ``repr`` shows the state.

Order violations between site classes are reported like any other. A site
class is registered once and kept (a program has finitely many sites), so
making a tracked lock costs a frame lookup and a dict lookup.
"""

from __future__ import annotations

import _thread
import sys
import threading
from collections.abc import Callable, Sequence
from types import CodeType, FrameType, ModuleType
from typing import TYPE_CHECKING, Any

from .held import CLASS_STRIDE
from .mutex import MODES, Mutex
from .naming import function_name, module_path
from .report import site_of
from .tracker import LOCKDEP

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec

_getframe = sys._getframe

_ORIGINALS: dict[str, Any] = {
    "Lock": threading.Lock,
    "RLock": threading.RLock,
    "Condition": threading.Condition,
}

# (code, instruction offset) of an allocation -> class id; sites are finite.
_site_ids: dict[tuple[CodeType, int], int] = {}


def site_name(frame: FrameType) -> str:
    """A site class's name: the module's import path (see ``naming``), the line of the
    frame's current instruction and its function, as ``shop/stock.py:4 in Stock.__init__``."""
    code = frame.f_code
    line = site_of(code, frame.f_lasti).line
    return f"{module_path(code, frame.f_globals)}:{line} in {function_name(code)}"


def site_tkey(frame: FrameType) -> int | None:
    """The tkey for a lock allocated at frame's current instruction (None: untracked)."""
    key = (frame.f_code, frame.f_lasti)
    cid = _site_ids.get(key)
    if cid is None:
        cid = LOCKDEP.register(site_name(frame))  # a reference kept for good
        _site_ids[key] = cid
    return cid * CLASS_STRIDE if cid >= 0 else None


# Up to 3.12 threading.Lock is a factory function and its type cannot be
# instantiated; from 3.13 threading.Lock is the type itself (``Lock | None``,
# ``Lock()``). The tracked lock follows whichever the interpreter does.
LOCK_IS_TYPE = isinstance(_ORIGINALS["Lock"], type)


class TrackedLock(Mutex):
    """``threading.Lock()`` after ``install()``: a lock whose class is its allocation site.

    Made by ``threading.Lock()`` only: like ``_thread.lock`` up to 3.12, the
    type itself cannot be instantiated (from 3.13, see ``_InstalledLock``).
    """

    __slots__ = ()
    _NEST = True

    def __new__(cls, *args: object, **kwargs: object) -> TrackedLock:
        raise TypeError(f"cannot create '{cls.__module__}.{cls.__qualname__}' instances")

    def __init__(self) -> None:  # pragma: no cover - __new__ refuses
        raise TypeError("use threading.Lock()")

    @classmethod
    def _make(cls, frame: FrameType) -> TrackedLock:
        lock = object.__new__(cls)
        lock._init_tracked(_thread.allocate_lock(), frame, False)
        return lock

    def _init_tracked(self, raw: Any, frame: FrameType, recursive: bool) -> None:
        # Mutex.__init__ registers a named class; a site class is registered once, here.
        self._id = -1  # no reference of its own to drop
        self._owner = 0
        self._lock = raw
        self._recursive = recursive
        self._backtrace = False
        self._tkey = self._fkey = site_tkey(frame)
        self._name = ""  # the class name is looked up when needed (see name)

    @property
    def name(self) -> str:
        tkey = self._tkey
        return LOCKDEP.name_of(tkey // CLASS_STRIDE) if tkey is not None else "untracked"

    def __repr__(self) -> str:
        state = "locked" if self.is_locked() else "unlocked"
        return f"<{state} lockdep.TrackedLock object (class {self.name}) at {id(self):#x}>"

    def _is_owned(self) -> bool:
        # What threading.Condition would find out with acquire(False) and
        # release(): a Lock has no owner, so "owned" means locked.
        return bool(self._lock.locked())

    def _release_slow(self, frame: FrameType | None) -> None:
        # Not owner-checked: a lock released by another thread leaves its holder's stack.
        tracker = LOCKDEP
        if tracker.pop_entry(self) is None and self._tkey is not None and tracker.tracking:
            for state, _entry in tracker.find_holders(self):
                tracker.remove_from(state, self)
                break
        self._lock.release()

    def _at_fork_reinit(self) -> None:
        if LOCKDEP.tracking:
            while LOCKDEP.pop_entry(self) is not None:
                pass
        self._lock._at_fork_reinit()


class TrackedRLock(TrackedLock):
    """``threading.RLock()`` after ``install()`` (instantiable, like ``_thread.RLock``)."""

    __slots__ = ()

    def __new__(cls, *args: object, **kwargs: object) -> TrackedRLock:
        return object.__new__(cls)

    def __init__(self, frame: FrameType | None = None) -> None:
        self._init_tracked(_thread.RLock(), frame or _getframe(1), True)

    def __repr__(self) -> str:
        # The interpreter's repr knows the owner and count, also of another thread.
        raw = repr(self._lock)
        return raw.replace(
            "_thread.RLock object", f"lockdep.TrackedRLock object (class {self.name})"
        )

    def _release_slow(self, frame: FrameType | None) -> None:
        # The interpreter checks the owner (RuntimeError for another thread).
        if LOCKDEP.tracking:
            LOCKDEP.pop_entry(self)
        self._lock.release()

    def _is_owned(self) -> bool:
        return bool(self._lock._is_owned())

    if hasattr(_thread.RLock(), "_recursion_count"):  # 3.11+, as the interpreter's RLock

        def _recursion_count(self) -> int:
            return int(self._lock._recursion_count())


class TrackedCondition(threading.Condition):
    """``threading.Condition()`` after ``install()``: without a lock, its RLock's class is
    the Condition's allocation site (not a line inside threading.py shared by all)."""

    def __init__(self, lock: Any = None) -> None:
        if lock is None:
            lock = TrackedRLock(_getframe(1))
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
        return cls._make(_getframe(1))  # type: ignore[return-value]

    def __init__(self) -> None:
        pass  # made by __new__

    def __init_subclass__(cls, **kwargs: object) -> None:
        raise TypeError("type 'lock' is not an acceptable base type")


# What install() puts in threading. They pass for threading's own names there
# (its __all__ test checks that they belong to the module).


def Lock() -> TrackedLock:
    """A new tracked lock, of the class of the calling line."""
    return TrackedLock._make(_getframe(1))


# 3.13+ warns when arguments are passed to threading.RLock (gh-102029).
_RLOCK_WARNS = sys.version_info >= (3, 13)


def RLock(*args: object, **kwargs: object) -> TrackedRLock:
    """A new tracked re-entrant lock, of the class of the calling line."""
    if _RLOCK_WARNS and (args or kwargs):
        import warnings  # imported at start-up: no lock made here

        warnings.warn(
            "Passing arguments to RLock is deprecated and will be removed in 3.15",
            DeprecationWarning,
            stacklevel=2,
        )
    return TrackedRLock(_getframe(1))


for _factory in (Lock, RLock):
    _factory.__module__ = "threading"


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

    Locks made before, and names imported with ``from threading import Lock``
    before, stay untracked.
    """
    global _installed
    if _installed:
        return
    _installed = True
    _replace(
        Lock=_InstalledLock if LOCK_IS_TYPE else Lock, RLock=RLock, Condition=_InstalledCondition
    )
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


def _replace(**factories: object) -> None:
    for name, factory in factories.items():
        setattr(threading, name, factory)


def installed() -> bool:
    return _installed


def _use_mode(mode: str) -> None:
    # threading's locks return True from __enter__: it is their acquire().
    enter: Callable[..., Any] = MODES[mode]["acquire"]
    setattr(TrackedLock, "__enter__", enter)  # noqa: B010 - a method swapped per mode


LOCKDEP.add_mode_listener(_use_mode)
