"""Locks the standard library made before ``install()``, adopted where that is safe.

``logging`` makes its module lock when it is imported, and each handler its
lock when it is made: in a test session or a service, long before ``install()``
(pytest imports logging itself). Left untracked, the locks of the one inversion
lockdep finds in CPython's own code would be invisible. So ``install()``
replaces, by tracked locks of the class they would have had (see
``roles.adopted_tkey``), the locks of a short list of module attributes and of
every live ``logging`` handler, each only if nobody holds it at that moment.

The old lock object must no longer be used once replaced: each of these is
read from its module or handler at every use (``with _lock:``,
``self.lock.acquire()``), never kept elsewhere. A thread half-way through
taking one while ``install()`` replaces it would hold the old one: call
``install()`` early, before the program's threads start.
"""

from __future__ import annotations

import _thread
import sys
from types import CodeType, ModuleType

from .instrument import TrackedLock, TrackedRLock
from .roles import adopted_tkey

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

# Module-level locks of the standard library: (module, attribute).
MODULE_LOCKS = (
    ("logging", "_lock"),
    ("concurrent.futures.thread", "_global_shutdown_lock"),
    ("concurrent.futures.process", "_global_shutdown_lock"),
)
_RAW_TYPES = {type(_thread.allocate_lock()): TrackedLock, _thread.RLock: TrackedRLock}


def adopt() -> int:
    """Replace what can be replaced now; returns how many locks were adopted."""
    count = 0
    for module_name, attribute in MODULE_LOCKS:
        module = sys.modules.get(module_name)
        if module is not None and _adopt_module_lock(module, attribute):
            count += 1
    logging = sys.modules.get("logging")
    if logging is not None:
        count += _adopt_handler_locks(logging)
    return count


def _adopt_module_lock(module: ModuleType, attribute: str) -> bool:
    lock = getattr(module, attribute, None)
    tracked_type = _RAW_TYPES.get(type(lock))
    if tracked_type is None:
        return False  # tracked already, or not a lock
    code = _module_code(module)
    line = _assignment_line(code, attribute) if code is not None else None
    if code is None or line is None:
        return False
    return _swap(
        lock,
        lambda: tracked_type.adopting(adopted_tkey(code, line, vars(module), None)),
        lambda new: setattr(module, attribute, new),
    )


def _adopt_handler_locks(logging: ModuleType) -> int:
    create = getattr(getattr(logging, "Handler", None), "createLock", None)
    code = getattr(create, "__code__", None)
    line = _call_line(code, ("RLock", "Lock")) if code is not None else None
    if code is None or line is None:
        return 0
    count = 0
    for ref in list(getattr(logging, "_handlerList", ())):
        handler = ref()
        lock = getattr(handler, "lock", None)
        tracked_type = _RAW_TYPES.get(type(lock))
        if handler is None or tracked_type is None:
            continue
        made_for = type(handler)

        def make(tracked_type: Any = tracked_type, made_for: type = made_for) -> Any:
            return tracked_type.adopting(adopted_tkey(code, line, vars(logging), made_for))

        if _swap(lock, make, lambda new, handler=handler: setattr(handler, "lock", new)):
            count += 1
    return count


def _swap(lock: Any, make: Any, install: Any) -> bool:
    """Replace lock by make() through install(new), if nobody holds lock now."""
    owned = getattr(lock, "_is_owned", None)
    if owned is not None and owned():
        return False  # this thread holds it (an RLock would let it in again)
    if not lock.acquire(False):
        return False
    try:
        install(make())
    finally:
        lock.release()
    return True


def _module_code(module: ModuleType) -> CodeType | None:
    spec: Any = getattr(module, "__spec__", None)
    loader: Any = getattr(spec, "loader", None)
    if spec is None or loader is None or not hasattr(loader, "get_code"):
        return None
    try:
        code = loader.get_code(spec.name)
    except Exception:
        return None
    return code if isinstance(code, CodeType) else None


def _lines(code: CodeType) -> list[tuple[Any, int]]:
    """(instruction, its line) for each instruction of code."""
    import dis

    line = code.co_firstlineno
    out = []
    for instruction in dis.get_instructions(code):
        positions = getattr(instruction, "positions", None)
        start = positions.lineno if positions is not None else instruction.starts_line
        if start:
            line = start
        out.append((instruction, line))
    return out


def _assignment_line(code: CodeType, name: str) -> int | None:
    """The line of the module-level assignment ``name = ...``."""
    for instruction, line in _lines(code):
        if instruction.opname in ("STORE_NAME", "STORE_GLOBAL") and instruction.argval == name:
            return line
    return None


def _call_line(code: CodeType, names: tuple[str, ...]) -> int | None:
    """The line where code loads one of names (``threading.RLock``) to call it."""
    for instruction, line in _lines(code):
        if instruction.opname.startswith("LOAD") and instruction.argval in names:
            return line
    return None
