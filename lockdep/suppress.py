"""Suppressions: known violations in code you do not own, listed so they do not fail a run.

Like a sanitizer's suppression file. Each line names a violation kind and the
classes involved, as shell-style patterns, words split and quoted as a shell
does; ``#`` starts a comment::

    # CPython's logging: dictConfig() vs FileHandler.close() (see the analysis)
    order  "<stdlib>/logging/__init__.py:* in <module>"  "<stdlib>/logging/*createLock*"

A violation is suppressed when its kind matches and every one of its classes
matches one of the line's patterns. Match allocation-site classes
(``install()``) by module and function, with ``*`` for the line: line numbers
change between versions of the code, the function does not. Suppressed
violations are still counted and named in a one-line summary, so a
suppression never hides that it applies.
"""

from __future__ import annotations

import fnmatch
import shlex
from collections.abc import Iterable

from .values import KINDS, Violation


class SuppressionError(ValueError):
    """A suppression file that cannot be used: names the file, the line and the problem."""


class Suppressions:
    """A set of suppression rules, loaded from files."""

    def __init__(self, rules: Iterable[tuple[str, tuple[str, ...], str]] = ()) -> None:
        self.rules = list(rules)

    @classmethod
    def load(cls, paths: Iterable[str]) -> Suppressions:
        rules = []
        for path in paths:
            try:
                with open(path, encoding="utf-8") as f:
                    lines = f.read().splitlines()
            except OSError as exc:
                raise SuppressionError(f"{path}: cannot read: {exc.strerror or exc}") from exc
            for number, text in enumerate(lines, 1):
                try:
                    words = shlex.split(text, comments=True)
                except ValueError as exc:
                    raise SuppressionError(f"{path}:{number}: {exc}") from exc
                if not words:
                    continue
                kind, patterns = words[0], tuple(words[1:])
                if kind not in KINDS:
                    raise SuppressionError(
                        f"{path}:{number}: kind must be one of {', '.join(KINDS)}, got {kind!r}"
                    )
                if not patterns:
                    raise SuppressionError(f"{path}:{number}: no class pattern after {kind!r}")
                rules.append((kind, patterns, f"{path}:{number}"))
        return cls(rules)

    def match(self, violation: Violation) -> str | None:
        """Where the rule suppressing violation is (file:line), or None."""
        for kind, patterns, where in self.rules:
            if kind == violation.kind and all(
                any(fnmatch.fnmatchcase(name, p) for p in patterns) for name in violation.classes
            ):
                return where
        return None
