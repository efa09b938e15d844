"""Violations: built from the facts detection gathered, counted, and delivered.

The tracker detects; the builders here make the ``Violation`` (its text from
``report``); ``Once`` decides what counts as the same violation, for everyone
who reports each distinct violation once (the "log" response, the runner, the
pytest plugin); ``ViolationLog`` counts every occurrence and keeps the first of
each; ``deliver`` carries out the configured response.
"""

from __future__ import annotations

import _thread
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence

from .checks import Fact, Recursion
from .errors import EXCEPTIONS
from .held import LOCK, Entry
from .threads import ThreadState
from .values import KINDS, ChainLink, HeldLock, Site, Violation

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Protocol

    class Describer(Protocol):
        """What builders need from the tracker: the public view of an entry, class labels."""

        def describe(self, entry: Entry) -> HeldLock: ...

        def class_label(self, key: int) -> str: ...


MAX_KEPT = 1000
LOGGER = "lockdep"


def from_fact(
    fact: Fact, d: Describer, held: list[HeldLock], taking: HeldLock, lock: object
) -> Violation:
    """The violation for what the checks found (see ``checks``)."""
    if isinstance(fact, Recursion):
        return recursive(held, taking, d.describe(fact.earlier), fact.earlier[LOCK] is lock)
    holding = d.describe(fact.holding)
    if fact.instances:
        name = taking.label
        chain = [ChainLink(f"{name}#{a}", f"{name}#{b}", info) for a, b, info in fact.links]
        return instance_order(held, taking, holding, chain)
    chain = [ChainLink(d.class_label(a), d.class_label(b), info) for a, b, info in fact.links]
    return order(held, taking, holding, [d.class_label(key) for key in fact.path], chain)


def holders(
    d: Describer, found: list[tuple[ThreadState, Entry]], *, stacks: bool = False
) -> list[tuple[str, HeldLock | None, list[str]]]:
    """Who holds a lock, for a report: the thread, its entry, and (stacks) its stack now."""
    import traceback

    names = {t.ident: t.name for t in threading.enumerate()}
    frames = sys._current_frames() if stacks else {}
    out: list[tuple[str, HeldLock | None, list[str]]] = []
    for state, entry in found:
        where = frames.get(state.ident)
        stack = traceback.format_stack(where) if where is not None else []
        who = f"thread '{names.get(state.ident, '?')}' (ident {state.ident})"
        out.append((who, d.describe(entry), stack))
    return out


def _new(kind: str, classes: Sequence[str], held: list[HeldLock]) -> Violation:
    return Violation(
        kind=kind,
        classes=tuple(classes),
        thread_name=threading.current_thread().name,
        thread_id=_thread.get_ident(),
        held=held,
        task=_current_task(),
    )


def _current_task() -> str | None:
    asyncio = sys.modules.get("asyncio")  # never imported just for this
    if asyncio is None:
        return None
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop in this thread
        return None
    return task.get_name() if task is not None else None


def _format(v: Violation, render: Callable[[ModuleType], str]) -> str:
    """v's report text, rendered by render(the ``report`` module), or why it could not be."""
    report = _report_module()
    if isinstance(report, Exception):
        return (
            f"lockdep: {v.kind} violation involving {', '.join(v.classes)} "
            f"(the full report could not be built: {report!r})"
        )
    text: str = report.safe_format(v, lambda: render(report))
    return text


def _report_module() -> ModuleType | Exception:
    # Imported on the first violation: a program that has none does not pay for
    # the text of reports at start-up. report imports no module that makes a lock.
    # The import can fail late in the interpreter's shutdown; the violation must
    # still be delivered.
    try:
        from . import report
    except Exception as exc:
        return exc
    return report


def limit_reached(limit: int, count: int, name: str) -> None:
    """Log, once, that the class limit stops validation (see ``log_safely``)."""
    report = _report_module()
    if isinstance(report, Exception):
        log_safely(f"lockdep: the class limit is reached (max_classes={limit}); validation is off")
    else:
        log_safely(report.format_limit(limit, count, name))


def recursive(
    held: list[HeldLock], taking: HeldLock, earlier: HeldLock, same_instance: bool
) -> Violation:
    v = _new("recursive", [taking.label], held)
    v.report = _format(v, lambda r: r.format_recursive(v, taking, earlier, same_instance))
    return v


def order(
    held: list[HeldLock],
    taking: HeldLock,
    holding: HeldLock,
    cycle: list[str],
    chain: list[ChainLink],
) -> Violation:
    """A cycle between classes: cycle is [the class being taken, ..., the held class]."""
    v = _new("order", cycle, held)
    v.chain = chain
    v.report = _format(v, lambda r: r.format_order(v, taking, holding))
    return v


def instance_order(
    held: list[HeldLock], taking: HeldLock, holding: HeldLock, chain: list[ChainLink]
) -> Violation:
    """A cycle among live instances of one class."""
    v = _new("order", [taking.label], held)
    v.chain = chain
    v.instances = True
    v.report = _format(v, lambda r: r.format_order(v, taking, holding))
    return v


def unlock(
    held: list[HeldLock],
    lock_label: str,
    site: Site,
    holders: list[tuple[str, HeldLock | None, list[str]]],
) -> Violation:
    """A release by a thread that does not hold the lock; holders: who does (see holders)."""
    holder = None
    if holders:
        who, entry, _stack = holders[0]
        holder = f"{who} since {entry.site}" if entry is not None else who
    v = _new("unlock", [lock_label], held)
    v.report = _format(v, lambda r: r.format_unlock(v, lock_label, site, holder))
    return v


def wait_timeout(
    held: list[HeldLock],
    lock_label: str,
    site: Site,
    waited: float,
    holders: list[tuple[str, HeldLock | None, list[str]]],
) -> Violation:
    v = _new("wait_timeout", [lock_label], held)
    v.report = _format(v, lambda r: r.format_wait_timeout(v, lock_label, site, waited, holders))
    return v


class Once:
    """Which violations were seen already: the same kind and the same classes, whatever
    held chain or instances led there. Thread-safe (its own raw lock, never tracked)."""

    def __init__(self) -> None:
        self._lock = _thread.allocate_lock()
        self._seen: set[tuple[str, frozenset[str]]] = set()

    def first(self, v: Violation) -> bool:
        """True the first time a violation like v is seen."""
        with self._lock:
            if v.key in self._seen:
                return False
            self._seen.add(v.key)
            return True

    def __len__(self) -> int:
        return len(self._seen)

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()

    def after_fork(self) -> None:
        self._lock = _thread.allocate_lock()


class ViolationLog:
    """Counts per kind, the distinct violations seen (the most recent MAX_KEPT), delivery.

    Thread-safe: its own raw lock, held only for bookkeeping, never while
    delivering.
    """

    def __init__(self) -> None:
        self._lock = _thread.allocate_lock()
        self.counts = dict.fromkeys(KINDS, 0)
        self._once = Once()
        self.kept: deque[Violation] = deque(maxlen=MAX_KEPT)

    def clear(self) -> None:
        with self._lock:
            self.counts = dict.fromkeys(KINDS, 0)
            self._once.clear()
            self.kept.clear()

    def total(self) -> int:
        return sum(self.counts.values())

    def record(self, v: Violation) -> bool:
        """Count v; True if it is the first of its kind and classes."""
        with self._lock:
            self.counts[v.kind] += 1
        if not self._once.first(v):
            return False
        self.kept.append(v)
        return True

    def deliver(self, v: Violation, response: str | Callable[[Violation], object]) -> None:
        """Record v and respond; with "log", repeats of one violation are only counted."""
        first = self.record(v)
        if response == "log" and not first:
            return
        deliver(v, response)

    def after_fork(self) -> None:
        self._lock = _thread.allocate_lock()
        self._once.after_fork()


def deliver(v: Violation, response: str | Callable[[Violation], object]) -> None:
    """Carry out the configured response; only "raise" lets an exception out."""
    if response == "raise" and v.kind in EXCEPTIONS:
        raise EXCEPTIONS[v.kind](v)
    if response == "abort":
        try:
            sys.stderr.write(v.report + "\n")
            sys.stderr.flush()
        finally:
            os.abort()
    if callable(response):
        try:
            response(v)
        except Exception:
            import traceback

            log_safely("lockdep: the on_violation callable failed:\n" + traceback.format_exc())
        return
    log_safely(v.report)  # "log", and "raise" for kinds that never raise


def log_safely(text: str) -> None:
    """Log text at ERROR on the ``lockdep`` logger; stderr if logging itself fails.

    logging is imported here, when first needed, so that ``install()`` done
    before the program imports logging also tracks logging's module lock.
    """
    try:
        import logging

        logging.getLogger(LOGGER).error("%s", text)
    except Exception:
        try:
            sys.stderr.write(text + "\n")
        except Exception:
            pass
