"""The lock types' hot path: in C when lockdep's extension is built, else in Python.

The hot path is the ``fast`` mode's acquisition of a ``Mutex`` or of one of
``install()``'s ``threading`` locks whose held chain plus class was validated
before (a chain-cache hit, SPEC 3.3): look the chain up, take the raw lock,
push an entry with the site (code object, instruction offset) on the thread's
held stack; and the matching release. It is written twice: in Python (the
methods in ``mutex.py`` and ``instrument.py``) and in C (``_fastpath.c``), which
saves the Python frames. Everything else - a miss, the graph, instance order,
reports, statistics, the other modes - is the same Python for both, which the C
methods call once when they miss.

Which one is used:

* C, when the extension was built (``pip install`` builds it where a C compiler
  and Python's headers are; if it cannot be built, the install still succeeds);
* Python when it was not, when ``LOCKDEP_PURE=1`` is in the environment as
  lockdep is imported, or after ``lockdep.configure(fast_path="python")``.

``lockdep.settings()["fast_path"]`` says which ("c" or "python").

The C extension is CPython's and relies on the GIL: it does not declare
free-threading support, is not built for free-threaded interpreters, and is not
imported where the GIL is off (importing it would turn the GIL on). It serves
one interpreter: a subinterpreter importing lockdep gets pure Python.

The plain mode's methods (lockdep off: the raw lock, and the owner recorded)
are in C too, and so is what ``threading.Condition.wait`` calls on ``install()``'s
locks (``_release_save``, ``_acquire_restore``) in its common case: the fast mode,
the lock alone on the held stack, the re-take's chain cached.

``LockCore``, the base class of the lock types, holds their fields: ``_lock``
(the raw lock), ``_tkey`` (the class's key, None when untracked), ``_fkey`` (the
key the fast path looks up, or None when it must not serve the lock), ``_owner``
(the ident of a holder lockdep does not track), the tracker's ``_lockdep_node``
and ``_lockdep_pos``, and ``_id``, ``_name``, ``_recursive``, ``_policy`` and
``_backtrace``. In C it is a struct, so that C can make a lock; in Python,
slots. Its finalizer gives back what a collected lock holds of the tracker (a
class reference, an instance number): in C without calling Python for the
locks that hold neither, which is most. A thread's held stack (``LOCKDEP.local.held``)
is one list for the thread's life: the C path keeps it per thread state rather
than reading the ``threading.local`` each time. An entry the C path pops that
nobody else refers to is kept (a few, shared under the GIL) and the next entry
is made in it, as ``zip()`` reuses its tuple.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from types import FrameType

from . import keys, sites
from .chains import Chain
from .held import REENTRY
from .threads import ThreadState
from .tracker import LOCKDEP

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

PURE_VARIABLE = "LOCKDEP_PURE"


def _forget(class_id: int, node: int) -> None:
    """A lock was collected: give back its class reference and instance number (never
    blocks: called from finalizers)."""
    if class_id >= 0:
        LOCKDEP.unregister_later(class_id)
    if node:
        LOCKDEP.forget_instance_later(node)


def _load() -> tuple[Any, str]:
    """The extension module, bound to the tracker, or None and why not."""
    if os.environ.get(PURE_VARIABLE, "") not in ("", "0"):
        return None, f"{PURE_VARIABLE} is set"
    if not getattr(sys, "_is_gil_enabled", lambda: True)():
        # The extension relies on the GIL: importing it would turn the GIL on.
        return None, "the interpreter runs without the GIL"
    try:
        _fastpath = importlib.import_module(f"{__package__}._fastpath")
    except ModuleNotFoundError:
        return None, "lockdep's C extension was not built (no C compiler when installed?)"
    except ImportError as exc:
        return None, f"lockdep's C extension does not load: {exc}"
    try:
        _fastpath.bind(
            local=LOCKDEP.local,
            subkey=keys.subclass_key,
            check_subclass=keys.check_subclass,
            known=LOCKDEP.checker.instances.known,
            thin_wrappers=sites.THIN_WRAPPERS,
            extra=REENTRY,
            forget=_forget,
            state_type=ThreadState,
            chain_type=Chain,
        )
    except ImportError as exc:  # another interpreter has it
        return None, str(exc)
    return _fastpath, ""


_C, WHY_PURE = _load()
AVAILABLE: tuple[str, ...] = ("c", "python") if _C is not None else ("python",)
_active = AVAILABLE[0]

if TYPE_CHECKING or _C is None:

    class LockCore:
        """The fields of a lock (see the module docstring)."""

        __slots__ = (
            "_backtrace",
            "_fkey",
            "_id",
            "_lock",
            "_lockdep_node",
            "_lockdep_pos",
            "_name",
            "_owner",
            "_policy",
            "_recursive",
            "_tkey",
        )

        _lock: Any
        _fkey: int | None
        _tkey: int | None
        _name: str
        _id: int
        _lockdep_node: int
        _lockdep_pos: int
        _owner: int
        _policy: int
        _recursive: bool
        _backtrace: bool

        def __del__(self) -> None:
            try:
                if self._id >= 0 or self._lockdep_node:
                    _forget(self._id, self._lockdep_node)
            except Exception:
                pass  # interpreter shutdown, or a lock whose __init__ never ran

else:
    LockCore = _C.LockCore


def active() -> str:
    """The implementation in use: "c" or "python"."""
    return _active


def use(implementation: str) -> None:
    """Use the implementation ("c" or "python") from now on; ValueError if unavailable.

    Both keep their state in the same held stacks, so a lock taken under one may
    be released under the other.
    """
    global _active
    if implementation not in ("c", "python"):
        raise ValueError(f"fast_path must be 'c' or 'python', got {implementation!r}")
    if implementation not in AVAILABLE:
        raise ValueError(f"fast_path 'c' is not available: {WHY_PURE}")
    if implementation != _active:
        _active = implementation
        LOCKDEP.refresh_methods()


def bind_makers(
    lock_type: type,
    rlock_type: type,
    lock_policy: int,
    rlock_policy: int,
    class_tkey: Callable[[FrameType], int | None],
    sites: dict[int, Any],
    python_lock: Callable[[], Any],
    python_rlock: Callable[..., Any],
) -> tuple[Callable[[], Any], Callable[..., Any], Callable[[type, int], Any]] | None:
    """The C makers of install()'s locks: ``threading.Lock`` and ``RLock`` as install()
    puts them, and ``make(cls, depth)``; None without the extension. They make the
    lock whose class ``sites`` (roles.FAST) knows without calling Python, and call
    ``class_tkey`` (or python_lock, python_rlock for what C leaves) otherwise."""
    if _C is None:
        return None
    lock, rlock = _C.bind_makers(
        lock_type=lock_type,
        rlock_type=rlock_type,
        lock_policy=lock_policy,
        rlock_policy=rlock_policy,
        class_tkey=class_tkey,
        sites=sites,
        python_lock=python_lock,
        python_rlock=python_rlock,
    )
    return lock, rlock, _C.make


def bind_waits(
    release_save: Callable[..., Any],
    acquire_restore: Callable[..., Any],
    retake_mask: int,
    read_flag: int,
) -> dict[str, Any] | None:
    """The C ``_release_save`` and ``_acquire_restore`` of install()'s locks (what
    ``threading.Condition.wait`` calls), by name; None without the extension. They
    serve every mode and implementation (a Condition binds them when it is made):
    their C path is the fast mode's common case (see ``wait_mode``), and they call
    release_save and acquire_restore (Mutex's) for the rest."""
    if _C is None:
        return None
    table: dict[str, Any] = _C.bind_waits(
        release_save=release_save,
        acquire_restore=acquire_restore,
        retake_mask=retake_mask,
        read_flag=read_flag,
    )
    return table


def wait_mode(mode: str) -> None:
    """Let the C wait methods take their C path in mode ("fast") on the C implementation."""
    if _C is not None:
        _C.wait_mode(mode == "fast" and _active == "c")


def owned_methods() -> dict[str, Any] | None:
    """The C ``_is_owned`` of install()'s "lock" and "rlock" (every mode); None when the
    Python ones are to be used."""
    if _C is None or _active != "c":
        return None
    table: dict[str, Any] = _C.METHODS["owned"]
    return table


def methods(kind: str, mode: str) -> dict[str, Any] | None:
    """The C methods of "mutex" or "tracked" locks in mode ("fast", "plain"), by name;
    None when the Python ones are to be used."""
    if _C is None or _active != "c":
        return None
    table: dict[str, Any] | None = _C.METHODS.get((kind, mode))
    return table
