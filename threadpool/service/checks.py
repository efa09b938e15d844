"""How a configuration key's value is checked: the scalar ``Check``s of the schema.

Each check returns the value to keep (converted: numbers to float, choices to
lower case, relative paths made absolute) or ``INVALID`` after recording the
problem, worded for the user (``must be a number >= 0, got 'abc'``).
``Function`` values become ``Ref``s, imported only in the reader's deferred
step (see ``schema``).
"""

from __future__ import annotations

import dataclasses
import importlib
import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from .schema import INVALID, Check, Reader, show

NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
NAME_RULE = "1 to 64 characters among letters, digits, '_', '.', '-'"
SPEC_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


@dataclasses.dataclass(frozen=True)
class Number(Check):
    """A finite number >= minimum (> minimum if ``strict``), as a float; null too when
    ``nullable``."""

    minimum: float = 0.0
    strict: bool = False
    nullable: bool = False

    def __call__(self, r: Reader, path: str, value: Any) -> Any:
        if value is None and self.nullable:
            return None
        ok = (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(value)
            and (value > self.minimum if self.strict else value >= self.minimum)
        )
        if not ok:
            rule = f"a number {'>' if self.strict else '>='} {self.minimum:g}"
            null = " or null" if self.nullable else ""
            r.add(path, f"must be {rule}{null}, got {show(value)}")
            return INVALID
        return float(value)


@dataclasses.dataclass(frozen=True)
class Integer(Check):
    """An integer in minimum..maximum; null too when ``nullable``."""

    minimum: int
    maximum: int
    nullable: bool = False

    def __call__(self, r: Reader, path: str, value: Any) -> Any:
        if value is None and self.nullable:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not self.minimum <= value <= self.maximum
        ):
            null = " or null" if self.nullable else ""
            r.add(
                path,
                f"must be an integer {self.minimum}..{self.maximum}{null}, got {show(value)}",
            )
            return INVALID
        return value


@dataclasses.dataclass(frozen=True)
class Boolean(Check):
    def __call__(self, r: Reader, path: str, value: Any) -> Any:
        if not isinstance(value, bool):
            r.add(path, f"must be true or false, got {show(value)}")
            return INVALID
        return value


@dataclasses.dataclass(frozen=True)
class String(Check):
    """A non-empty string (matching ``pattern``, described by ``rule``)."""

    nullable: bool = False
    pattern: re.Pattern[str] | None = None
    rule: str = ""

    def __call__(self, r: Reader, path: str, value: Any) -> Any:
        if value is None and self.nullable:
            return None
        if (
            not isinstance(value, str)
            or not value
            or (self.pattern is not None and not self.pattern.match(value))
        ):
            what = f"a string of {self.rule}" if self.rule else "a non-empty string"
            null = " or null" if self.nullable else ""
            r.add(path, f"must be {what}{null}, got {show(value)}")
            return INVALID
        return value


NAME = String(pattern=NAME_RE, rule=NAME_RULE)


@dataclasses.dataclass(frozen=True)
class Choice(Check):
    """One of ``options`` (any case; kept in lower case)."""

    options: tuple[str, ...]

    def __call__(self, r: Reader, path: str, value: Any) -> Any:
        if not isinstance(value, str) or value.lower() not in self.options:
            r.add(path, f"must be one of {', '.join(self.options)}, got {show(value)}")
            return INVALID
        return value.lower()


@dataclasses.dataclass(frozen=True)
class Address(Check):
    """An IP address (not a host name: what the listener binds must be unambiguous)."""

    def __call__(self, r: Reader, path: str, value: Any) -> Any:
        value = String()(r, path, value)
        if value is INVALID:
            return INVALID
        try:
            ipaddress.ip_address(value)
        except ValueError:
            r.add(path, f"must be an IP address like 127.0.0.1 or ::1, got {value!r}")
            return INVALID
        return value


@dataclasses.dataclass(frozen=True)
class FilePath(Check):
    """A path, or null; relative paths are made relative to the configuration's
    directory."""

    def __call__(self, r: Reader, path: str, value: Any) -> Any:
        value = String(nullable=True)(r, path, value)
        if value is INVALID or value is None:
            return value
        return str(r.base_dir / value)


@dataclasses.dataclass(eq=False)
class Ref:
    """A ``module:function`` value: ``spec`` as written, ``target`` once imported
    (None until then, or if the import failed). Compares by ``spec``."""

    spec: str
    target: Callable[..., Any] | None = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ref) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash(self.spec)

    def __str__(self) -> str:
        return self.spec


@dataclasses.dataclass(frozen=True)
class Function(Check):
    """``module:function`` (or null when ``nullable``), as a ``Ref``; the module is
    imported, and the attribute checked to be callable, in the deferred step."""

    nullable: bool = False

    def __call__(self, r: Reader, path: str, value: Any) -> Any:
        spec = String(nullable=self.nullable)(r, path, value)
        if spec is INVALID or spec is None:
            return spec
        if not SPEC_RE.match(spec):
            r.add(path, f"must be 'module:function' (like 'package.module:name'), got {show(spec)}")
            return INVALID
        ref = Ref(spec)
        r.defer(lambda: _import(r, path, ref))
        return ref


def _import(r: Reader, path: str, ref: Ref) -> None:
    module_name, attr = ref.spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or whatever the module raised on import
        r.add(path, f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}")
        return
    obj = getattr(module, attr, None)
    if obj is None:
        r.add(path, f"module {module_name!r} has no attribute {attr!r}")
    elif not callable(obj):
        r.add(path, f"{ref.spec} is not callable (it is a {type(obj).__name__})")
    else:
        ref.target = obj


@dataclasses.dataclass(frozen=True)
class Settings(Check):
    """A free-form mapping with names as keys (checked by whoever receives it)."""

    null_is_default = True

    def __call__(self, r: Reader, path: str, value: Any) -> Any:
        if not isinstance(value, Mapping) or any(not isinstance(k, str) for k in value):
            r.add(path, f"must be a mapping with names as keys, got {show(value)}")
            return INVALID
        return dict(value)
