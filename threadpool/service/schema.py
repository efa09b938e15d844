"""The configuration's schema machinery: each key declared once, read from YAML, documented.

A section of the configuration is a frozen, keyword-only dataclass whose fields
are declared with ``key()``: how the value is checked, its default (or that it
is required), whether a reload may change it, and the sentence documenting it.
Everything else follows from that one declaration:

* ``read_document`` checks a parsed YAML document against the top section and
  builds the dataclasses, collecting every problem (``Reader.problems``)
  instead of stopping at the first; a wrong value is reported and its default
  used, so that checking goes on;
* the known keys in "unknown key" messages, and their order, are the fields';
* ``example.render`` writes a commented YAML document (the shipped
  ``config.yaml``) from the same declarations;
* ``fixed_keys`` lists the keys a reload may not change.

A key that no longer means anything stays readable for a while: the section
lists it in its ``RETIRED`` class attribute (``{key: why}``), and a document
that still has it loads, with a warning naming its key path and why
(``Reader.warnings``), instead of the "unknown key" error. Old files keep
working; the warning says what to remove.

How a value is checked is a ``Check``: the scalar ones are in ``checks``;
``Section`` (a nested mapping) and ``Items`` (a list of them) are here, with
the reading they drive. Rules between keys (``threads`` or
``min_threads``/``max_threads``) live in the section's
``check(reader, path, mapping)`` method, run after its keys are read.

``module:function`` values (``checks.Ref``) are imported, and work that needs them
(building producers) done, only in ``Reader.run_deferred``, after the whole
document has been checked: the service installs lockdep in between when asked
to, so that the handlers' own locks are tracked. Nothing here raises for bad
input; ``Reader.raise_if_any`` does, once.

Values in messages are shown as a YAML user wrote them (``null``, ``true``,
``'abc'``), shortened so that a huge or self-referencing document cannot make
a huge message.
"""

from __future__ import annotations

import dataclasses
import difflib
import reprlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

_REPR = reprlib.Repr()
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlist = _REPR.maxdict = _REPR.maxset = 4
_REPR.maxlevel = 2

INVALID: Any = object()  # what a check returns for a value it reported


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


class Reader:
    """Problems found so far in the document read from ``source`` (relative paths
    start at ``base_dir``), and the work deferred until it has been checked."""

    def __init__(self, source: str, base_dir: Path) -> None:
        self.source = source
        self.base_dir = base_dir
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self._deferred: list[Callable[[], None]] = []

    def add(self, path: str, message: str) -> None:
        where = f"{path}: " if path else ""
        self.problems.append(f"{self.source}: {where}{message}")

    def warn(self, path: str, message: str) -> None:
        """Something the document should not say, though it can be used as it is."""
        where = f"{path}: " if path else ""
        self.warnings.append(f"{self.source}: {where}{message}")

    def defer(self, work: Callable[[], None]) -> None:
        """Run ``work`` in ``run_deferred`` (imports, and what needs them), in order."""
        self._deferred.append(work)

    def run_deferred(self) -> None:
        work, self._deferred = self._deferred, []
        for step in work:
            step()

    def raise_if_any(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)


# --- declaring keys ---------------------------------------------------------------------


class Check:
    """How one key's value is checked: ``__call__`` returns the value to keep, or
    INVALID after reporting the problem at ``path``."""

    # A key holding a mapping or list counts as left out when its value is null.
    null_is_default = False

    def __call__(self, r: Reader, path: str, value: Any) -> Any:
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Key:
    """What ``key()`` records on a field."""

    check: Check
    doc: str
    required: bool
    fixed: bool  # a reload may not change it (restart the service)
    replaces: bool  # changing it replaces the running object instead of changing it


def key(
    check: Check,
    default: Any = dataclasses.MISSING,
    *,
    doc: str,
    fixed: bool = False,
    replaces: bool = False,
) -> Any:
    """A configuration key, declared as a dataclass field. No default: required. A
    mapping as default is copied for each section object. A ``fixed`` key's ``doc``
    says that changing it needs a restart."""
    if fixed:
        doc += " (restart to change)"
    meta = {"key": Key(check, doc, default is dataclasses.MISSING, fixed, replaces)}
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def keys(cls: type) -> Iterator[tuple[str, Key, Any]]:
    """(name, Key, default) for each key of section ``cls``, in declaration order."""
    for f in dataclasses.fields(cls):
        meta = f.metadata.get("key")
        if meta is not None:
            factory = f.default_factory
            yield f.name, meta, f.default if factory is dataclasses.MISSING else factory()


def values(section: object, *, which: Callable[[Key], bool] = lambda k: True) -> dict[str, Any]:
    """The keys of a section object (those ``which`` selects) and their values."""
    return {name: getattr(section, name) for name, k, _ in keys(type(section)) if which(k)}


def fixed_keys(cls: type, path: str = "") -> Iterator[tuple[str, tuple[str, ...]]]:
    """(key path, attribute path) of every key, in nested sections too, that a reload
    may not change."""
    for name, k, _ in keys(cls):
        if k.fixed:
            yield join(path, name), (name,)
        if isinstance(k.check, Section):
            for sub, attrs in fixed_keys(k.check.cls, join(path, name)):
                yield sub, (name, *attrs)


# --- nested sections ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Section(Check):
    """A nested mapping read as the dataclass ``cls``."""

    cls: type
    what: str = "a mapping"
    null_is_default = True

    def __call__(self, r: Reader, path: str, value: Any) -> Any:
        section = read(r, self.cls, path, value, self.what)
        return INVALID if section is None else section


@dataclasses.dataclass(frozen=True)
class Items(Check):
    """A list of mappings, each read as ``cls``; ``what`` names one (in messages),
    and no two may have the same ``name``."""

    cls: type
    what: str
    null_is_default = True

    def __call__(self, r: Reader, path: str, value: Any) -> Any:
        if not isinstance(value, list):
            r.add(path, f"must be a list of {self.what}s, got {show(value)}")
            return INVALID
        items = []
        for i, entry in enumerate(value):
            item = read(r, self.cls, join(path, i), entry)
            if item is not None:
                items.append(item)
        seen: set[str] = set()
        for item in items:
            if item.name in seen:
                r.add(path, f"two {self.what}s are named {item.name!r}")
            seen.add(item.name)
        return tuple(items)


# --- reading ----------------------------------------------------------------------------


def read(r: Reader, cls: type, path: str, value: object, what: str = "a mapping") -> Any:
    """Check ``value`` against section ``cls`` and build it; None when it is not a
    mapping or a required key is missing or wrong (the problems are in ``r``)."""
    if not isinstance(value, Mapping):
        r.add(path, f"must be {what}, got {show(value)}")
        return None
    declared = list(keys(cls))
    names = [name for name, _k, _d in declared]
    retired: Mapping[str, str] = getattr(cls, "RETIRED", {})
    for name in value:
        if isinstance(name, str) and name in retired:
            r.warn(join(path, name), f"no longer used, ignored: {retired[name]}; remove it")
        elif not isinstance(name, str):
            r.add(path, f"unknown key {show(name)} (keys are names like {names[0]!r})")
        elif name not in names:
            close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            r.add(join(path, name), f"unknown key{hint} (known: {', '.join(names)})")
    complete = True
    for name, k, _default in declared:
        if k.required and name not in value:
            r.add(path, f"missing required key {name!r}")
            complete = False
    found: dict[str, Any] = {}
    for name, k, _default in declared:
        if name not in value:
            continue
        if value[name] is None and k.check.null_is_default and not k.required:
            continue  # a section or list with nothing under it counts as left out
        checked = k.check(r, join(path, name), value[name])
        if checked is not INVALID:
            found[name] = checked
        elif k.required:
            complete = False
    if not complete:
        return None
    section = cls(**found)
    check = getattr(section, "check", None)
    return check(r, path, value) if check is not None else section


def read_document(r: Reader, cls: type, document: object) -> Any:
    """The top section, from a parsed YAML document (None: see ``r.problems``)."""
    if document is None:
        r.add("", "the file is empty; it needs at least a 'pools' list")
        return None
    try:
        return read(r, cls, "", document, "a mapping with at least a 'pools' list")
    except RecursionError:  # a self-referencing document in a message, say
        r.add("", "nested too deeply to check")
        return None
