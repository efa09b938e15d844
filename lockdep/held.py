"""Held stacks: what each thread holds, in acquisition order.

A held stack is a list of entries, bottom first, whose bottom is a sentinel so
that ``held[-1]`` always exists. An entry is a tuple
``(lock, tkey, chain, code, lasti, extra)``:

* ``tkey``: ``((class_id * 8 + subclass) << 2) | flags`` with the ``TRY`` and
  ``READ`` flags; ``tkey >> 2`` is the node of the dependency graph;
* ``chain``: the chain-cache node for the stack up to and including this entry
  (see ``tracker``);
* ``code``, ``lasti``: the acquisition site: the acquiring frame's code and
  instruction offset, turned into file:line only when a report needs it
  (computing a line number on every acquisition would cost more than the rest
  of the fast path). Not the frame itself: it would keep the caller's locals,
  and with them abandoned locks (see prune_abandoned), alive;
* ``extra``: None, or an ``Extra`` with the backtrace, the acquisition time and
  the re-entry flag, when backtraces, statistics or recursion need them.

Tuples, not objects, because the lock types push and pop them inline on their
fast paths. A stack is only modified by its own thread, except when a lock is
released on another thread's behalf (``remove_entry``).
"""

from __future__ import annotations

import sys
import weakref
from types import CodeType, FrameType
from typing import Any, Final

from .report import UNKNOWN_SITE, HeldLock, Site, site_of

TRY: Final = 1
READ: Final = 2
SUBCLASSES: Final = 8
SUBCLASS_STRIDE: Final = 4  # tkey step between subclasses
CLASS_STRIDE: Final = SUBCLASSES * SUBCLASS_STRIDE  # tkey step between classes

_getrefcount = getattr(sys, "getrefcount", None)

# Entry fields.
LOCK: Final = 0
TKEY: Final = 1
CHAIN: Final = 2
CODE: Final = 3
LASTI: Final = 4
EXTRA: Final = 5


class Extra:
    """What an entry keeps beyond the fast path's fields."""

    __slots__ = ("reentry", "since", "stack")

    def __init__(self, stack: tuple[str, ...] | None, since: float, reentry: bool) -> None:
        self.stack = stack
        self.since = since
        self.reentry = reentry


Entry = tuple[Any, int, dict[Any, Any], "CodeType | None", int, "Extra | None"]


class ThreadState:
    """A thread's held stack, statistics, and whether it is inside lockdep."""

    __slots__ = ("busy", "held", "ident", "stats", "token_ref")

    def __init__(self, ident: int, held: list[Entry]) -> None:
        self.ident = ident
        self.held = held
        self.busy = False  # inside lockdep: further acquisitions are untracked
        self.stats: dict[int, list[float]] = {}  # class id -> lockstats record
        self.token_ref: weakref.ref[Token] | None = None


class Token:
    """Lives in a thread's local storage; its death tells the tracker the thread is gone."""

    __slots__ = ("__weakref__",)


def class_id(tkey: int) -> int:
    return tkey // CLASS_STRIDE


def graph_key(tkey: int) -> int:
    return tkey >> 2


def entry_site(entry: Entry) -> Site:
    return site_of(entry[CODE], entry[LASTI])


def frame_site(frame: FrameType | None) -> Site:
    return site_of(frame.f_code, frame.f_lasti) if frame is not None else UNKNOWN_SITE


def is_reentry(entry: Entry) -> bool:
    extra = entry[EXTRA]
    return extra is not None and extra.reentry


def holds(held: list[Entry], lock: object) -> bool:
    return any(entry[LOCK] is lock for entry in held)


def find(held: list[Entry], lock: object, read: bool | None = None) -> int:
    """Index of the most recent entry for lock (of that mode, unless read is None), or 0."""
    for i in range(len(held) - 1, 0, -1):
        entry = held[i]
        if entry[LOCK] is lock and (read is None or bool(entry[TKEY] & READ) == read):
            return i
    return 0


def remove_at(held: list[Entry], index: int) -> Entry:
    """Remove held[index]; rebuild the chain nodes of the entries above it."""
    entry = held.pop(index)
    chain = held[index - 1][CHAIN]
    for i in range(index, len(held)):
        above = held[i]
        if not is_reentry(above):
            # A transition not validated for the shorter stack gets a fresh,
            # detached node: a cold cache is always safe.
            nxt = chain.get(above[TKEY])
            chain = nxt if nxt is not None else {}
        held[i] = (above[LOCK], above[TKEY], chain, above[CODE], above[LASTI], above[EXTRA])
    return entry


def prune_abandoned(held: list[Entry]) -> None:
    """Drop the entries of locks that nothing but this stack refers to any more.

    A ``threading.Lock`` may be taken and then dropped while locked (CPython's
    own tests do it): nobody can ever wait on it again, yet it would sit on the
    stack for good, and every lock its thread takes afterwards would get a
    spurious edge from it. CPython only (reference counts); a no-op elsewhere.
    """
    if _getrefcount is None:
        return
    for i in range(len(held) - 1, 0, -1):
        lock = held[i][LOCK]
        tuples = 0
        for entry in held:
            if entry[LOCK] is lock:
                tuples += 1
        # The entries' tuples, this local, and getrefcount's argument.
        if _getrefcount(lock) <= tuples + 2:
            remove_at(held, i)


def remove(held: list[Entry], lock: object) -> bool:
    """Remove the most recent entry for lock, wherever it is; whether there was one."""
    index = find(held, lock)
    if index:
        remove_at(held, index)
    return bool(index)


def describe(entry: Entry, name: str) -> HeldLock:
    """The public view of an entry; name is its class's name."""
    tkey = entry[TKEY]
    extra = entry[EXTRA]
    return HeldLock(
        name=name,
        subclass=graph_key(tkey) % SUBCLASSES,
        lock=entry[LOCK],
        mode="read" if tkey & READ else "write",
        trylock=bool(tkey & TRY),
        site=entry_site(entry),
        stack=extra.stack if extra is not None else None,
        reentry=extra.reentry if extra is not None else False,
    )
