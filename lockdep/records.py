"""``typing.NamedTuple``'s class syntax at run time, without ``typing``.

lockdep's value types are named tuples declared the ``typing.NamedTuple`` way.
``python -m lockdep run`` imports them before the program starts, so what they
cost at import is paid by every program run under it: ``typing`` itself (which
a program need not import), and ``typing.NamedTuple`` compiling each field's
annotation (a string under ``from __future__ import annotations``) into a
``ForwardRef``. Modules import ``NamedTuple`` from here at run time and from
``typing`` under ``TYPE_CHECKING``, so type checkers see typing's.

The classes made are ``collections.namedtuple`` classes, as typing's are: same
fields, defaults, methods, docstring and module; ``__annotations__`` holds the
annotations as written (strings), which ``typing.get_type_hints`` resolves.
"""

from __future__ import annotations

import collections

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

# Set by namedtuple itself, or not to be copied onto its class.
_SPECIAL = frozenset({"__module__", "__qualname__", "__annotations__", "__dict__", "__weakref__"})
# What namedtuple defines and a declaration may not replace (as in typing).
_PROHIBITED = frozenset(
    {"__new__", "__init__", "__slots__", "__getnewargs__", "_fields", "_field_defaults"}
    | {"_make", "_replace", "_asdict", "_source"}
)


class _NamedTupleMeta(type):
    def __new__(mcs, typename: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> type:
        if not bases:  # NamedTuple itself
            return super().__new__(mcs, typename, bases, namespace)
        if bases != (NamedTuple,):
            raise TypeError("a named tuple can only derive from NamedTuple")
        fields: dict[str, object] = dict(namespace.get("__annotations__", {}))
        defaults = []
        for name in fields:
            if name in namespace:
                defaults.append(namespace[name])
            elif defaults:
                raise TypeError(f"non-default field {name!r} follows a default field")
        make: Any = collections.namedtuple  # mypy checks only calls with literal fields
        cls: type = make(typename, list(fields), defaults=defaults, module=namespace["__module__"])
        cls.__annotations__ = fields
        for key, value in namespace.items():
            if key in _PROHIBITED:
                raise AttributeError(f"cannot overwrite NamedTuple attribute {key}")
            if key not in _SPECIAL and key not in fields:
                setattr(cls, key, value)
        return cls


class NamedTuple(metaclass=_NamedTupleMeta):
    """Derive from this (at run time) to declare a named tuple, as with typing's."""

    __slots__ = ()
