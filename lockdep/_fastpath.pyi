"""lockdep's hot path in C (see fastpath.py)."""

from collections.abc import Callable
from typing import Any

class LockCore:
    _lock: Any
    _fkey: int | None
    _lockdep_node: int
    _lockdep_pos: int
    _owner: int

METHODS: dict[tuple[str, str], dict[str, Callable[..., Any]]]

def bind(
    local: Any,
    subkey: Callable[..., Any],
    check_subclass: Callable[..., Any],
    known: dict[int, Any],
    thin_wrappers: dict[str, Any],
    extra: type,
) -> None: ...
