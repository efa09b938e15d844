"""The thread registry: each thread's held stack and statistics, found from any thread.

A thread meets lockdep through a ``threading.local`` (the tracker's ``local``):
the first time it touches it, ``attach`` gives it a held stack, a
``ThreadState`` and a ``Token``. The token lives in the thread's local storage
only; when the thread ends, the token dies, and a weak reference's callback
hands the state to ``on_exit`` (the tracker retires it: its statistics are kept,
its entry dropped). Other threads find a thread's state by ident, to report
what it holds or to release a lock on its behalf.
"""

from __future__ import annotations

import _thread
import threading
import weakref
from collections.abc import Callable

from .held import Entry

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any


class ThreadState:
    """A thread's held stack, statistics, and whether it is inside lockdep."""

    __slots__ = ("_name", "busy", "held", "ident", "stats", "token_ref")

    def __init__(self, ident: int, held: list[Entry]) -> None:
        self.ident = ident
        self._name: str | None = None
        self.held = held
        self.busy = False  # inside lockdep: further acquisitions are untracked
        self.stats: dict[int, list[float]] = {}  # class id -> lockstats record
        self.token_ref: weakref.ref[Token] | None = None

    @property
    def name(self) -> str:
        """The thread's name, asked of threading the first time it is needed (from the
        thread itself), then kept."""
        name = self._name
        if name is None:
            name = self._name = threading.current_thread().name
        return name


class Token:
    """Lives in a thread's local storage; its death tells the registry the thread is gone."""

    __slots__ = ("__weakref__",)


class Threads:
    """Every thread that has touched lockdep, by ident.

    ``on_exit(state)`` is called (from a finalizer: it must not block) when a
    thread's local storage goes away.
    """

    def __init__(self, on_exit: Callable[[ThreadState], None]) -> None:
        self._states: dict[int, ThreadState] = {}
        self._on_exit = on_exit

    def attach(self, local: Any, held: list[Entry]) -> None:
        """Give the calling thread its state, stored on ``local`` (held, state, token)."""
        state = ThreadState(_thread.get_ident(), held)
        token = Token()
        on_exit = self._on_exit
        state.token_ref = weakref.ref(token, lambda _ref: on_exit(state))
        local.held = held
        local.state = state
        local.token = token
        self._states[state.ident] = state

    def get(self, ident: int) -> ThreadState | None:
        return self._states.get(ident)

    def states(self) -> list[ThreadState]:
        return list(self._states.values())

    def __len__(self) -> int:
        return len(self._states)

    def drop(self, state: ThreadState) -> bool:
        """Forget state if it is still the one registered for its ident."""
        if self._states.get(state.ident) is state:
            del self._states[state.ident]
            return True
        return False

    def keep_only(self, ident: int) -> list[ThreadState]:
        """After fork: forget every thread but ident's; returns the forgotten states."""
        gone = [s for i, s in self._states.items() if i != ident]
        for state in gone:
            del self._states[state.ident]
        return gone
