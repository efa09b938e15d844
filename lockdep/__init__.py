"""lockdep: find lock-order bugs before they deadlock.

Every lock has a class. The first time a thread takes class B while holding
class A, the edge A -> B is recorded; an acquisition that would close a cycle
in that graph, or take again a class the thread already holds, is reported
before the thread blocks, so the deadlock is found even in a run whose timing
never lets it happen. Modelled on Ceph's ``lockdep`` and Linux's lockdep.

    import lockdep
    a, b = lockdep.Mutex("a"), lockdep.Mutex("b")
    with a, b: pass
    with b, a: pass          # LockOrderError, before blocking

The module functions act on the process's one tracker.
"""

from __future__ import annotations

import os
import threading

from . import fastpath
from .errors import LockdepError, LockOrderError, RecursiveLockError, UnlockError
from .instrument import install, installed, uninstall
from .mutex import Mutex, check_name
from .tracker import LOCKDEP
from .values import KINDS, RESPONSES, HeldLock, Site, Violation

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .cond import Cond
    from .persist import save
    from .shared_mutex import SharedMutex

# Public names whose modules a program run under ``python -m lockdep run`` need
# not pay for at start-up: imported on first use (PEP 562).
_LAZY = {"Cond": "cond", "SharedMutex": "shared_mutex", "save": "persist"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


if os.environ.get("LOCKDEP_GRAPH"):
    from . import persist  # noqa: F401  (saves the graph at exit)


__all__ = [
    "KINDS",
    "RESPONSES",
    "Cond",
    "HeldLock",
    "LockOrderError",
    "LockdepError",
    "Mutex",
    "RecursiveLockError",
    "SharedMutex",
    "Site",
    "UnlockError",
    "Violation",
    "all_held_locks",
    "configure",
    "graph",
    "held_locks",
    "install",
    "installed",
    "register",
    "reset",
    "save",
    "settings",
    "stats",
    "uninstall",
    "unregister",
    "violations",
]

_UNSET: Any = object()


def configure(
    enabled: bool = _UNSET,
    on_violation: str | Callable[[Violation], object] = _UNSET,
    backtrace: bool = _UNSET,
    max_classes: int = _UNSET,
    wait_timeout: float | None = _UNSET,
    stats: bool = _UNSET,
    fast_path: str = _UNSET,
) -> dict[str, Any]:
    """Change lockdep's settings; only the arguments given change. Returns the settings.

    * ``enabled`` (default True): validate at all. Turning it off costs locks
      almost nothing; turning it back on forgets what threads held meanwhile.
    * ``on_violation`` (default "raise"): "raise" the error in the offending
      thread before it blocks; "log" each distinct violation once at ERROR on
      the ``lockdep`` logger; "abort" after writing the report to stderr; or a
      callable that receives the ``Violation``.
    * ``backtrace`` (default False): record a full stack with every acquisition.
    * ``max_classes`` (default 131072): the class limit.
    * ``wait_timeout`` (default None): report acquisitions blocked longer than
      this many seconds, naming the holder and its stack; the wait goes on.
    * ``stats`` (default False): per-class acquisition, contention, wait and
      hold statistics in ``stats()``.
    * ``fast_path``: the implementation of the validated acquisition, "c" (the
      default where lockdep's C extension is built and ``LOCKDEP_PURE`` is not
      set) or "python". Both behave the same; "c" is faster.

    All arguments are checked before any is applied; a bad one raises
    TypeError or ValueError saying what is accepted.
    """
    changes: dict[str, Any] = {}
    if enabled is not _UNSET:
        changes["enabled"] = _bool("enabled", enabled)
    if on_violation is not _UNSET:
        if not callable(on_violation) and on_violation not in RESPONSES:
            raise ValueError(
                f"on_violation must be one of {', '.join(map(repr, RESPONSES))} or a callable "
                f"taking a lockdep.Violation, got {on_violation!r}"
            )
        changes["on_violation"] = on_violation
    if backtrace is not _UNSET:
        changes["backtrace"] = _bool("backtrace", backtrace)
    if stats is not _UNSET:
        changes["stats_enabled"] = _bool("stats", stats)
    if max_classes is not _UNSET:
        if isinstance(max_classes, bool) or not isinstance(max_classes, int):
            raise TypeError(f"max_classes must be an int >= 1, got {max_classes!r}")
        if max_classes < 1:
            raise ValueError(f"max_classes must be an int >= 1, got {max_classes!r}")
        changes["max_classes"] = max_classes
    if wait_timeout is not _UNSET:
        if wait_timeout is not None:
            if isinstance(wait_timeout, bool) or not isinstance(wait_timeout, (int, float)):
                raise TypeError(
                    f"wait_timeout must be a number of seconds > 0 or None, got {wait_timeout!r}"
                )
            if not wait_timeout > 0:
                raise ValueError(
                    f"wait_timeout must be a number of seconds > 0 or None, got {wait_timeout!r}"
                )
            wait_timeout = float(wait_timeout)
        changes["wait_timeout"] = wait_timeout
    if fast_path is not _UNSET:
        if fast_path not in fastpath.AVAILABLE:
            why = f" ({fastpath.WHY_PURE})" if fast_path == "c" else ""
            raise ValueError(
                f"fast_path must be one of {', '.join(map(repr, fastpath.AVAILABLE))}{why}, "
                f"got {fast_path!r}"
            )
        changes["fast_path"] = fast_path
    tracker = LOCKDEP
    for name, value in changes.items():
        if name == "max_classes":
            tracker.set_max_classes(value)
        elif name == "fast_path":
            fastpath.use(value)
        else:
            setattr(tracker, name, value)
    tracker.update_mode()
    return settings()


def settings() -> dict[str, Any]:
    """The current settings, as configure() takes them."""
    tracker = LOCKDEP
    return {
        "enabled": tracker.enabled,
        "on_violation": tracker.on_violation,
        "backtrace": tracker.backtrace,
        "max_classes": tracker.registry.max_classes,
        "wait_timeout": tracker.wait_timeout,
        "stats": tracker.stats_enabled,
        "fast_path": fastpath.active(),
    }


def _bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def register(name: str) -> int:
    """Take a reference to the class ``name`` and return its id (Ceph's lockdep_register).

    Returns -1 when the class limit is reached (reported once; validation stops).
    """
    return LOCKDEP.register(check_name("lock class", name))


def unregister(class_id: int) -> None:
    """Drop one reference taken by register(). The class keeps its edges until its id
    is needed for another class. ValueError for an id with no live reference."""
    if isinstance(class_id, bool) or not isinstance(class_id, int):
        raise TypeError(f"class id must be an int, got {class_id!r}")
    LOCKDEP.unregister(class_id)


def held_locks(thread: threading.Thread | None = None) -> list[HeldLock]:
    """The tracked locks a thread holds, outermost first (default: the calling thread)."""
    if thread is None:
        return LOCKDEP.held_locks(threading.get_ident())
    if not isinstance(thread, threading.Thread):
        raise TypeError(f"thread must be a threading.Thread or None, got {thread!r}")
    if thread.ident is None:
        return []
    return LOCKDEP.held_locks(thread.ident)


def all_held_locks() -> dict[str, list[HeldLock]]:
    """Every thread's held locks, keyed by thread name (threads holding none omitted)."""
    names = {t.ident: t.name for t in threading.enumerate()}
    out = {}
    for state in LOCKDEP.states():
        held = LOCKDEP.held_locks(state.ident)
        if held:
            out[names.get(state.ident, f"thread {state.ident}")] = held
    return out


def graph() -> dict[str, Any]:
    """The dependency graph, JSON-serialisable: classes, and edges with first-seen sites."""
    return LOCKDEP.graph_data()


def stats() -> dict[str, Any]:
    """Counters, JSON-serialisable: classes, edges, checks, cache hits, violations, and
    per-class lock statistics when ``stats=True``.

    ``cache_hits`` is counted only while statistics are on (None otherwise): the
    fast path does not pay for counting.
    """
    return LOCKDEP.stats_data()


def violations() -> list[Violation]:
    """The distinct violations seen so far (the most recent 1000), first occurrence of each."""
    return list(LOCKDEP.violations.kept)


def reset() -> None:
    """Forget the graph, the chain cache, statistics and violations (for tests).

    Classes with live locks, and the allocation-site classes of ``install()``,
    keep their ids. Call it when no tracked lock is held.
    """
    LOCKDEP.reset()
