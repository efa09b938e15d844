"""``Timeline``: the entries of a queue that takes deadlines, oldest first.

A deque of entries (storage.py's module docstring says what an entry is) with
two methods for the hot path of deadlines and the expiry of the last in-order
entry:

* ``put(item, deadline)``: append ``(now + deadline, item)`` (now: ``time.monotonic()``)
  and make it the ``tail``; if it would expire before the tail (out of order),
  append nothing and return False (the queue then gives it a timer of its own);
* ``take(now)``: if the front entry is ``(expires, item)`` with ``expires > now``,
  take it off and return the item; else return the ``nothing`` it was made with
  and leave everything as it was;
* ``tail``: the expiry of the last in-order entry; ``-inf`` for an empty queue,
  ``inf`` once an entry that never expires is behind.

The rest is a deque's: ``append``, ``appendleft``, ``popleft``, ``clear``,
``len``, indexing, ``del t[i]``, iteration (of a copy).

It is written twice, like lockdep's hot path: in Python (``PyTimeline``, a deque)
and in C (``threadpool/_timeline.c``), which keeps an ``(expires, item)`` entry as
a double and a reference rather than a tuple and a float, and reads the clock
without a Python call: with the C one, a far deadline costs a no-op item under a
tenth of its rate rather than a fifth. Both behave the same; the tests run both.
The C one is used where it was built (``pip install`` builds it where it can),
unless ``THREADPOOL_PURE=1`` was in the environment when threadpool was imported,
or the interpreter runs without the GIL (the C type relies on it, as a deque
does). ``IMPLEMENTATION`` says which ("c" or "python").
"""

from __future__ import annotations

import os
from collections import deque
from time import monotonic
from typing import TYPE_CHECKING, Any

from .freethreading import gil_enabled

PURE_VARIABLE = "THREADPOOL_PURE"
INF = float("inf")


class PyTimeline(deque):  # type: ignore[type-arg]
    """The Python ``Timeline`` (see the module docstring)."""

    __slots__ = ("_nothing", "_tail")

    def __init__(self, nothing: Any) -> None:
        super().__init__()
        self._nothing = nothing
        self._tail = -INF

    @property
    def tail(self) -> float:
        return self._tail

    @tail.setter
    def tail(self, value: float) -> None:
        if not isinstance(value, (int, float)):
            raise TypeError(f"tail must be a number, got {value!r}")
        self._tail = float(value)

    def __setitem__(self, index: Any, value: Any) -> None:
        raise TypeError("Timeline entries cannot be replaced")

    def put(self, item: Any, deadline: float) -> bool:
        expires = monotonic() + deadline
        if expires < self._tail:
            return False
        self._tail = expires
        self.append((expires, item))
        return True

    def take(self, now: float) -> Any:
        try:
            entry = self[0]
        except IndexError:
            return self._nothing
        if (
            entry.__class__ is tuple
            and len(entry) == 2
            and entry[0].__class__ is float
            and entry[0] > now
        ):
            self.popleft()
            return entry[1]
        return self._nothing


def _load() -> tuple[type[PyTimeline], str]:
    if os.environ.get(PURE_VARIABLE, "") not in ("", "0"):
        return PyTimeline, "python"
    if not gil_enabled():
        return PyTimeline, "python"
    try:
        from ._timeline import Timeline as CTimeline
    except ImportError:
        return PyTimeline, "python"
    return CTimeline, "c"  # type: ignore[return-value]  # the same methods


if TYPE_CHECKING:
    Timeline = PyTimeline
    IMPLEMENTATION: str
else:
    Timeline, IMPLEMENTATION = _load()
