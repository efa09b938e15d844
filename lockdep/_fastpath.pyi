"""lockdep's hot path in C (see fastpath.py)."""

from collections.abc import Callable
from typing import Any

class LockCore:
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

METHODS: dict[tuple[str, str] | str, dict[str, Callable[..., Any]]]

def bind(
    local: Any,
    subkey: Callable[..., Any],
    check_subclass: Callable[..., Any],
    known: dict[int, Any],
    thin_wrappers: dict[str, Any],
    extra: object,
    forget: Callable[[int, int], None],
    state_type: type,
    chain_type: type,
) -> None: ...
def bind_makers(
    lock_type: type,
    rlock_type: type,
    lock_policy: int,
    rlock_policy: int,
    class_tkey: Callable[..., Any],
    sites: dict[int, Any],
    python_lock: Callable[[], Any],
    python_rlock: Callable[..., Any],
) -> tuple[Callable[[], Any], Callable[..., Any]]: ...
def make(cls: type, depth: int, /) -> Any: ...
