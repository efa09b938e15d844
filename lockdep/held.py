"""Held stacks: what each thread (or asyncio task) holds, in acquisition order.

A held stack is a list of entries, bottom first, whose bottom is a sentinel so
that ``held[-1]`` always exists. An entry is a tuple
``(lock, tkey, chain, code, lasti, extra)``:

* ``tkey``: the acquisition's key (see ``keys``);
* ``chain``: the chain-cache node for the stack up to and including this entry
  (see ``chains``);
* ``code``, ``lasti``: the acquisition site: the acquiring frame's code and
  instruction offset, turned into file:line only when a report needs it
  (computing a line number on every acquisition would cost more than the rest
  of the fast path). Not the frame itself: it would keep the caller's locals,
  and with them abandoned locks (see prune_abandoned), alive;
* ``extra``: None, or an ``Extra`` with the backtrace, the acquisition time and
  the re-entry flag, when backtraces, statistics or recursion need them.

Tuples, not objects, because the lock types push and pop them inline on their
fast paths. A stack is only modified by its own thread, except when a lock is
released on another thread's behalf.

Releases out of order cost nothing that grows with the stack. An entry removed
from the middle leaves a *tombstone* (lock None) carrying the chain of what is
below it, so that positions do not move; the entries above get their chain
recomputed only until one comes out unchanged (with the chain cache's
distinct-class trie, at once when another lock of the removed class is held
below: a thread releasing 3,000 futures' locks first-in first-out pays O(1)
each). A removal drops the tombstones left at the top; the lock types' fast
release (a plain pop) may leave some, which is harmless: each carries the
chain of what is below it.

Each tracked lock object has an attribute ``_lockdep_pos`` that the tracker
alone writes (the lock types declare it): the index of the lock's most recent
entry when it was pushed off the fast path, a hint that makes finding that
entry O(1) (``find`` checks the hint before it trusts it).
"""

from __future__ import annotations

import sys
from types import CodeType, FrameType

from .chains import Chain, advance
from .keys import READ, SUBCLASSES, TRY, graph_key
from .values import UNKNOWN_SITE, HeldLock, Site, site_of

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any, Final

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


# The extra of a re-entry's entry in the fast mode (nothing else to keep): one object,
# shared, as extras are never changed once made.
REENTRY: Final = Extra(None, 0.0, True)

Entry = tuple["Any", int, Chain, "CodeType | None", int, "Extra | None"]


def sentinel(root: Chain) -> Entry:
    return (None, -1, root, None, -1, None)


def entry_site(entry: Entry) -> Site:
    return site_of(entry[CODE], entry[LASTI])


def frame_site(frame: FrameType | None) -> Site:
    return site_of(frame.f_code, frame.f_lasti) if frame is not None else UNKNOWN_SITE


_WITH_OPENERS = frozenset({"SETUP_WITH", "BEFORE_WITH", "BEFORE_ASYNC_WITH"})


def in_with_statement(code: CodeType | None, lasti: int) -> bool:
    """Whether the instruction at lasti enters a ``with`` (or ``async with``) block: a
    lock taken there is used as a mutex, released by the thread that took it."""
    if code is None or lasti < 0:
        return False
    import dis  # only for a suspected self-deadlock; imports no lock-making module

    previous: list[str] = []
    for instruction in dis.get_instructions(code):
        if instruction.offset > lasti:
            break
        previous = [*previous[-3:], instruction.opname]
    if not previous:
        return False
    if previous[-1] in _WITH_OPENERS:  # the opener calls __enter__ itself
        return True
    if len(previous) > 1 and previous[-2] == "LOAD_SPECIAL":  # 3.14: __enter__ then CALL
        return True
    return "BEFORE_ASYNC_WITH" in previous  # awaiting __aenter__


def is_reentry(entry: Entry) -> bool:
    extra = entry[EXTRA]
    return extra is not None and extra.reentry


def find(held: list[Entry], lock: object, read: bool | None = None) -> int:
    """Index of the most recent entry for lock (of that mode, unless read is None), or 0."""
    pos = getattr(lock, "_lockdep_pos", 0)
    if 0 < pos < len(held):
        entry = held[pos]
        if entry[LOCK] is lock and (read is None or bool(entry[TKEY] & READ) == read):
            return pos
    for i in range(len(held) - 1, 0, -1):
        entry = held[i]
        if entry[LOCK] is lock and (read is None or bool(entry[TKEY] & READ) == read):
            return i
    return 0


def innermost(held: list[Entry], key: int) -> int:
    """Index of the most recent live entry of graph key ``key``, or 0."""
    for i in range(len(held) - 1, 0, -1):
        entry = held[i]
        if entry[TKEY] >> 2 == key and entry[LOCK] is not None:
            return i
    return 0


def pop_top(held: list[Entry]) -> Entry:
    """Pop the top entry, and the tombstones it leaves on top (see the module docstring)."""
    entry = held.pop()
    while len(held) > 1 and held[-1][LOCK] is None:
        held.pop()
    return entry


def remove_at(held: list[Entry], index: int) -> Entry:
    """Remove held[index]: a tombstone in the middle, the top popped (see the module
    docstring); the chains above are brought up to date."""
    if index == len(held) - 1:
        return pop_top(held)
    entry = held[index]
    node = held[index - 1][CHAIN]
    held[index] = (None, -1, node, None, -1, None)
    for i in range(index + 1, len(held)):
        above = held[i]
        if above[LOCK] is None or above[TKEY] >> 2 in node.classes:
            new = node  # advance(), inline: a tombstone, or a class held below
        else:
            new = advance(node, above[TKEY])
        if new is above[CHAIN]:
            break
        held[i] = (above[LOCK], above[TKEY], new, above[CODE], above[LASTI], above[EXTRA])
        node = new
    while len(held) > 1 and held[-1][LOCK] is None:
        held.pop()
    return entry


def remove(held: list[Entry], lock: object) -> bool:
    """Remove the most recent entry for lock, wherever it is; whether there was one."""
    index = find(held, lock)
    if index:
        remove_at(held, index)
    return bool(index)


def live(held: list[Entry]) -> list[Entry]:
    """The entries of locks (no sentinel, no tombstone), bottom first."""
    return [entry for entry in held[1:] if entry[LOCK] is not None]


def prune_abandoned(held: list[Entry]) -> None:
    """Drop the entries of locks that nothing but this stack refers to any more.

    A ``threading.Lock`` may be taken and then dropped while locked (CPython's
    own tests do it): nobody can ever wait on it again, yet it would sit on the
    stack for good, and every lock its thread takes afterwards would get a
    spurious edge from it. CPython with the GIL only (reference counts);
    elsewhere a no-op. One pass over the stack: the tracker calls it on its slow
    path only.
    """
    if _getrefcount is None or not getattr(sys, "_is_gil_enabled", lambda: True)():
        return
    counts: dict[int, int] = {}
    for entry in held:
        lock = entry[LOCK]
        if lock is not None:
            counts[id(lock)] = counts.get(id(lock), 0) + 1
    for i in range(len(held) - 1, 0, -1):
        if i >= len(held):
            continue  # the top was popped meanwhile
        lock = held[i][LOCK]
        # The entries' tuples, this local, and getrefcount's argument.
        if lock is not None and _getrefcount(lock) <= counts[id(lock)] + 2:
            remove_at(held, i)
        lock = None


def describe(entry: Entry, name: str, instance: int = 0) -> HeldLock:
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
        instance=instance,
    )
