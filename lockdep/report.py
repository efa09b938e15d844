"""Violation objects, their text reports, and the configured response to them.

Detection (``tracker``) decides *that* something is wrong and gathers the facts;
this module turns the facts into a report that reads like Linux's lockdep and
delivers it: raise, log once per distinct violation, abort, or hand it to a
callable. Formatting never raises into the host program: a failure while
building a report yields a shorter report that says so.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from types import CodeType
from typing import Any, NamedTuple

from .errors import EXCEPTIONS

LOGGER = "lockdep"

KINDS = ("recursive", "order", "unlock", "wait_timeout")


class Site(NamedTuple):
    """Where a lock was taken: file, line, function."""

    file: str
    line: int
    function: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} in {self.function}"


UNKNOWN_SITE = Site("<unknown>", 0, "<unknown>")


def site_of(code: CodeType | None, lasti: int | None) -> Site:
    """The site of the instruction at byte offset lasti of code."""
    if code is None or lasti is None:
        return UNKNOWN_SITE
    line = code.co_firstlineno
    for start, end, lineno in code.co_lines():
        if start <= lasti < end:
            if lineno is not None:
                line = lineno
            break
    return Site(code.co_filename, line, code.co_name)


def label(name: str, subclass: int) -> str:
    """A class as shown in reports: its name, with ``/subclass`` when not 0."""
    return name if subclass == 0 else f"{name}/{subclass}"


class HeldLock(NamedTuple):
    """One entry of a thread's held stack, as returned by ``lockdep.held_locks``."""

    name: str
    subclass: int
    lock: object
    mode: str  # "write" or "read"
    trylock: bool
    site: Site
    stack: tuple[str, ...] | None = None
    reentry: bool = False

    @property
    def label(self) -> str:
        return label(self.name, self.subclass)

    def describe(self) -> str:
        how = []
        if self.mode == "read":
            how.append("read")
        if self.trylock:
            how.append("trylock")
        if self.reentry:
            how.append("re-entered")
        extra = f" ({', '.join(how)})" if how else ""
        return f'"{self.label}"{extra} at {self.site}'

    def as_dict(self) -> dict[str, Any]:
        return {
            "class": self.name,
            "subclass": self.subclass,
            "mode": self.mode,
            "trylock": self.trylock,
            "reentry": self.reentry,
            "site": str(self.site),
            "stack": list(self.stack) if self.stack is not None else None,
        }


class EdgeInfo:
    """What lockdep keeps about a dependency A -> B: where it was first seen, and a count.

    ``count`` counts validations: the chain cache makes one per distinct held
    chain that leads to the edge, not one per acquisition.
    """

    __slots__ = ("count", "from_site", "from_stack", "thread", "to_site", "to_stack")

    def __init__(
        self,
        thread: str,
        from_site: Site,
        to_site: Site,
        from_stack: tuple[str, ...] | None = None,
        to_stack: tuple[str, ...] | None = None,
    ) -> None:
        self.thread = thread
        self.from_site = from_site
        self.to_site = to_site
        self.from_stack = from_stack
        self.to_stack = to_stack
        self.count = 1

    def __repr__(self) -> str:
        return f"<EdgeInfo {self.from_site} -> {self.to_site} in {self.thread!r} x{self.count}>"

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "thread": self.thread,
            "from_site": str(self.from_site),
            "to_site": str(self.to_site),
            "from_stack": list(self.from_stack) if self.from_stack is not None else None,
            "to_stack": list(self.to_stack) if self.to_stack is not None else None,
        }


class ChainLink(NamedTuple):
    """One edge of an existing dependency chain, for an order report."""

    source: str
    target: str
    info: EdgeInfo | None


class Violation:
    """A lockdep violation: what the response (raise, log, abort, callable) receives.

    ``kind`` is "recursive", "order", "unlock" or "wait_timeout"; ``classes``
    names the classes involved (for ``order``, the whole cycle in order,
    starting with the class being taken); ``held`` is what the thread (or
    asyncio task) held; ``chain`` the existing dependency chain of an order
    violation; ``report`` the full text.
    """

    __slots__ = ("chain", "classes", "held", "kind", "report", "task", "thread_id", "thread_name")

    def __init__(
        self,
        kind: str,
        classes: tuple[str, ...],
        thread_name: str,
        thread_id: int,
        held: list[HeldLock],
        task: str | None = None,
    ) -> None:
        self.kind = kind
        self.classes = classes
        self.thread_name = thread_name
        self.thread_id = thread_id
        self.held = held
        self.task = task
        self.report = ""
        self.chain: list[ChainLink] = []

    def __repr__(self) -> str:
        return (
            f"<lockdep.Violation {self.kind} {' -> '.join(self.classes)} in {self.thread_name!r}>"
        )

    @property
    def key(self) -> tuple[str, frozenset[str]]:
        """Violations with equal keys are the same violation (reported once when logging)."""
        return self.kind, frozenset(self.classes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "classes": list(self.classes),
            "thread": self.thread_name,
            "thread_id": self.thread_id,
            "task": self.task,
            "held": [h.as_dict() for h in self.held],
            "chain": [
                {"from": c.source, "to": c.target, **(c.info.as_dict() if c.info else {})}
                for c in self.chain
            ],
            "report": self.report,
        }


# --- text -------------------------------------------------------------------

_RULE = "=" * 64
_THIN = "-" * 64


def _header(title: str) -> list[str]:
    return [_RULE, f"lockdep: {title}", _THIN]


def _thread(v: Violation) -> str:
    task = f", task '{v.task}'" if v.task else ""
    return f"thread '{v.thread_name}' (ident {v.thread_id}){task}"


def _held_section(v: Violation) -> list[str]:
    if not v.held:
        return ["", f"{_thread(v)} holds no tracked lock."]
    lines = ["", f"{len(v.held)} lock(s) held by {_thread(v)}:"]
    for i, h in enumerate(v.held):
        lines.append(f"  #{i}: {h.describe()}")
        lines.extend(_indent_stack(h.stack, "        "))
    return lines


def _indent_stack(stack: Sequence[str] | None, prefix: str) -> list[str]:
    if not stack:
        return []
    out: list[str] = []
    for frame in stack:
        out.extend(prefix + part for part in frame.rstrip("\n").split("\n"))
    return out


def format_recursive(v: Violation, taking: HeldLock, earlier: HeldLock, same_instance: bool) -> str:
    what = "the same lock" if same_instance else "another lock of the same class"
    lines = _header("possible recursive locking detected")
    lines += [
        f"{_thread(v)} is trying to acquire lock:",
        f"  {taking.describe()}",
        *_indent_stack(taking.stack, "      "),
        "",
        f"but it already holds {what}:",
        f"  {earlier.describe()}",
        *_indent_stack(earlier.stack, "      "),
        "",
        "Possible unsafe locking scenario:",
        "",
        f"  lock({earlier.label});",
        f"  lock({taking.label});",
        "",
        " *** DEADLOCK ***",
    ]
    if not same_instance:
        lines += [
            "",
            "If nesting two locks of one class is intended, say so with a subclass:",
            "  with outer: ... with inner.nested(1): ...   (or inner.lock(subclass=1))",
        ]
    lines += _held_section(v)
    lines.append(_RULE)
    return "\n".join(lines)


def format_order(v: Violation, taking: HeldLock, holding: HeldLock) -> str:
    lines = _header("possible circular locking dependency detected")
    lines += [
        f"{_thread(v)} is trying to acquire lock:",
        f"  {taking.describe()}",
        *_indent_stack(taking.stack, "      "),
        "",
        "but it already holds lock:",
        f"  {holding.describe()}",
        *_indent_stack(holding.stack, "      "),
        "",
        "which lock already depends on the new lock.",
        "",
        "The existing dependency chain is:",
    ]
    for i, link in enumerate(v.chain):
        lines.append(f"  #{i}: {link.source} -> {link.target}")
        if link.info is not None:
            info = link.info
            lines.append(f"      first seen in thread '{info.thread}':")
            lines.append(f"        {link.source} taken at {info.from_site}")
            lines.extend(_indent_stack(info.from_stack, "          "))
            lines.append(f"        then {link.target} taken at {info.to_site}")
            lines.extend(_indent_stack(info.to_stack, "          "))
    lines += [
        "and this acquisition would add:",
        f"  #{len(v.chain)}: {holding.label} -> {taking.label}",
        f"        {holding.label} taken at {holding.site}",
        f"        then {taking.label} being taken at {taking.site}",
        "",
        "Possible unsafe locking scenario:",
        "",
    ]
    lines += _scenario(holding.label, taking.label, v.chain)
    lines += ["", " *** DEADLOCK ***"]
    lines += _held_section(v)
    lines.append(_RULE)
    return "\n".join(lines)


def _scenario(holding: str, taking: str, chain: list[ChainLink]) -> list[str]:
    # Two columns, as Linux prints them: this thread, and one standing for the
    # thread(s) that established the chain.
    width = max(24, len(holding) + 12, len(taking) + 12)
    other_first = chain[0].source if chain else taking
    other_last = chain[-1].target if chain else holding
    rows = [
        ("this thread", "another thread"),
        ("-----------", "--------------"),
        (f"lock({holding});", ""),
        ("", f"lock({other_first});"),
    ]
    if len(chain) > 1:
        rows.append(("", "..."))
    rows += [("", f"lock({other_last});"), (f"lock({taking});", "")]
    return [f"  {left:<{width}}{right}".rstrip() for left, right in rows]


def format_unlock(v: Violation, lock_label: str, site: Site, holder: str | None) -> str:
    lines = _header("bad unlock balance detected")
    lines += [
        f"{_thread(v)} is trying to release lock:",
        f'  "{lock_label}" at {site}',
        "",
        "but it does not hold it: "
        + (f"it is held by {holder}." if holder else "it is not locked at all."),
    ]
    lines += _held_section(v)
    lines.append(_RULE)
    return "\n".join(lines)


def format_wait_timeout(
    v: Violation,
    lock_label: str,
    site: Site,
    waited: float,
    holders: Sequence[tuple[str, HeldLock | None, list[str]]],
) -> str:
    lines = _header(f"lock wait exceeded {waited:g} s")
    lines += [
        f"{_thread(v)} has waited {waited:g} s for lock:",
        f'  "{lock_label}" at {site}',
    ]
    if not holders:
        lines += ["", "No thread is recorded as holding it (taken untracked or already released)."]
    for name, entry, stack in holders:
        where = f" since {entry.site}" if entry is not None else ""
        lines += ["", f"It is held by {name}{where}; that thread's current stack:"]
        lines.extend(_indent_stack(stack, "  ") or ["  <stack not available>"])
    lines += ["", "The wait goes on."]
    lines += _held_section(v)
    lines.append(_RULE)
    return "\n".join(lines)


def format_limit(limit: int, classes: int, name: str) -> str:
    return (
        f"lockdep: the class limit is reached: max_classes={limit}, {classes} classes all have "
        f"live locks, so class {name!r} cannot be registered. Lock validation is now off for "
        f"the rest of this run; the program goes on. Raise the limit with "
        f"lockdep.configure(max_classes=N) (or the service's lockdep.max_classes)."
    )


def safe_format(v: Violation, render: Callable[[], str]) -> str:
    """Run a formatter; if it fails, return a short report that says why."""
    try:
        return render()
    except Exception as exc:  # a report must never take the program down
        return (
            f"lockdep: {v.kind} violation involving {', '.join(v.classes)} in {_thread(v)} "
            f"(the full report could not be built: {exc!r})"
        )


# --- delivery -----------------------------------------------------------------


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
