"""Checking a parsed YAML document piece by piece, collecting every problem.

``Problems`` accumulates messages of the form ``<key path>: <problem>``; the
``take_*`` helpers read one key of a mapping, check it, record a problem and
return a default when it is wrong, so that validation goes on and reports
everything in one pass. ``config.py`` describes the configuration with them.
Nothing here raises for bad input; ``Problems.raise_if_any`` does, once.

Values in messages are shown as a YAML user wrote them (``null``, ``true``,
``'abc'``), shortened so that a huge or self-referencing document cannot make
a huge message.
"""

from __future__ import annotations

import difflib
import importlib
import math
import re
import reprlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

_REPR = reprlib.Repr()
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlist = _REPR.maxdict = _REPR.maxset = 4
_REPR.maxlevel = 2

NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
NAME_RULE = "1 to 64 characters among letters, digits, '_', '.', '-'"
SPEC_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


class ConfigError(Exception):
    """A configuration that cannot be used. ``problems`` lists every problem found,
    each a line ``<file>: <key path>: <problem>``; ``str()`` joins them."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def show(value: object) -> str:
    """A value as it reads in YAML, shortened."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    try:
        return _REPR.repr(value)
    except Exception:  # a repr that fails: say what it is
        return f"a {type(value).__name__}"


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class Problems:
    """Problems found so far in the document read from ``source``."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        where = f"{path}: " if path else ""
        self.items.append(f"{self.source}: {where}{message}")

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)

    # --- mappings and lists ---------------------------------------------------------

    def mapping(
        self, path: str, value: object, known: Iterable[str], what: str = "a mapping"
    ) -> Mapping[str, Any] | None:
        """``value`` if it is a mapping with only ``known`` keys (unknown keys are
        problems, with a "did you mean" when one is close); None if not a mapping."""
        if not isinstance(value, Mapping):
            self.add(path, f"must be {what}, got {show(value)}")
            return None
        names = list(known)
        for key in value:
            if not isinstance(key, str):
                self.add(path, f"unknown key {show(key)} (keys are names like {names[0]!r})")
            elif key not in names:
                close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                self.add(join(path, key), f"unknown key{hint} (known: {', '.join(names)})")
        return value

    def sequence(self, path: str, value: object, what: str) -> list[Any]:
        if not isinstance(value, list):
            self.add(path, f"must be a list of {what}, got {show(value)}")
            return []
        return value

    def required(self, path: str, m: Mapping[str, Any], key: str) -> bool:
        if key not in m:
            self.add(path, f"missing required key {key!r}")
            return False
        return True

    # --- scalars ---------------------------------------------------------------------

    def number(
        self,
        path: str,
        m: Mapping[str, Any],
        key: str,
        default: float | None,
        *,
        minimum: float = 0.0,
        strict: bool = False,
        nullable: bool = False,
    ) -> float | None:
        """A finite number >= minimum (> minimum if ``strict``), as a float; or null
        when ``nullable``. The default when the key is absent or the value wrong."""
        if key not in m:
            return default
        value = m[key]
        if value is None and nullable:
            return None
        rule = f"a number {'>' if strict else '>='} {minimum:g}"
        ok = (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(value)
            and (value > minimum if strict else value >= minimum)
        )
        if not ok:
            null = " or null" if nullable else ""
            self.add(join(path, key), f"must be {rule}{null}, got {show(value)}")
            return default
        return float(value)

    def integer(
        self,
        path: str,
        m: Mapping[str, Any],
        key: str,
        default: int | None,
        *,
        minimum: int,
        maximum: int,
    ) -> int | None:
        if key not in m:
            return default
        value = m[key]
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            self.add(join(path, key), f"must be an integer {minimum}..{maximum}, got {show(value)}")
            return default
        return value

    def boolean(self, path: str, m: Mapping[str, Any], key: str, default: bool) -> bool:
        if key not in m:
            return default
        value = m[key]
        if not isinstance(value, bool):
            self.add(join(path, key), f"must be true or false, got {show(value)}")
            return default
        return value

    def string(
        self,
        path: str,
        m: Mapping[str, Any],
        key: str,
        default: str | None,
        *,
        nullable: bool = False,
        pattern: re.Pattern[str] | None = None,
        rule: str = "",
    ) -> str | None:
        if key not in m:
            return default
        value = m[key]
        if value is None and nullable:
            return None
        if not isinstance(value, str) or not value or (pattern and not pattern.match(value)):
            what = f"a string of {rule}" if rule else "a non-empty string"
            null = " or null" if nullable else ""
            self.add(join(path, key), f"must be {what}{null}, got {show(value)}")
            return default
        return value

    def choice(
        self, path: str, m: Mapping[str, Any], key: str, default: str, choices: Iterable[str]
    ) -> str:
        if key not in m:
            return default
        value = m[key]
        options = list(choices)
        if not isinstance(value, str) or value.lower() not in options:
            self.add(join(path, key), f"must be one of {', '.join(options)}, got {show(value)}")
            return default
        return value.lower()

    def name(self, path: str, m: Mapping[str, Any], key: str = "name") -> str | None:
        return self.string(path, m, key, None, pattern=NAME_RE, rule=NAME_RULE)

    def callable_at(self, path: str, m: Mapping[str, Any], key: str) -> Callable[..., Any] | None:
        """Import ``module:function`` (now, not when first called) and return it."""
        spec = self.string(path, m, key, None)
        if spec is None:
            return None
        where = join(path, key)
        if not SPEC_RE.match(spec):
            self.add(
                where, f"must be 'module:function' (like 'package.module:name'), got {show(spec)}"
            )
            return None
        module_name, attr = spec.split(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # ImportError, or whatever the module raised on import
            self.add(where, f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}")
            return None
        obj = getattr(module, attr, None)
        if obj is None:
            self.add(where, f"module {module_name!r} has no attribute {attr!r}")
            return None
        if not callable(obj):
            self.add(where, f"{spec} is not callable (it is a {type(obj).__name__})")
            return None
        return obj  # type: ignore[no-any-return]
