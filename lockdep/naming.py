"""Portable names for code: the module's import path, never a machine's path.

A site class's name (``install()``) must be the same in every process running
the same code, wherever it was started from and wherever Python is installed,
so that graphs saved by different processes merge (``persist``). An absolute
path is neither; a path relative to the current directory changes with it.
The module's import path is both: ``<stdlib>/logging/__init__.py`` for the
standard library, ``bank/accounts.py`` for the module ``bank.accounts`` wherever
it is installed, ``prog.py`` for a script run as ``__main__``.

Nothing here imports a module, and nothing asks a module for anything: names
are made while locks are created, which can be half-way through some module's
import (``sysconfig`` makes an ``RLock`` while it is being imported; asking it
for its paths at that moment fails).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import CodeType

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

# The standard library's directory: where ``os`` itself lives (always imported).
_STDLIB = os.path.dirname(os.path.abspath(os.__file__)) + os.sep
_INSTALLED = ("site-packages", "dist-packages")


def module_path(code: CodeType, module_globals: Mapping[str, Any]) -> str:
    """The import path of the module ``code`` belongs to (``module_globals`` are the
    globals it runs with): ``<stdlib>/…``, ``package/module.py``, ``script.py``; a
    generated file name (``<string>``) as it is."""
    filename = code.co_filename
    if filename.startswith("<"):
        return filename
    if filename.startswith(_STDLIB):
        relative = filename[len(_STDLIB) :]
        if not relative.startswith(_INSTALLED):
            return "<stdlib>/" + relative.replace(os.sep, "/")
    base = os.path.basename(filename)
    name = module_globals.get("__name__")
    if name == "__main__":
        spec = module_globals.get("__spec__")
        name = getattr(spec, "name", None)  # python -m package.module
    if not isinstance(name, str) or not name or name == "__main__":
        return base
    parts = name.split(".")
    if base.startswith("__init__."):
        return "/".join([*parts, base])
    if os.path.splitext(base)[0] != parts[-1]:
        return base  # globals of another module (exec): the file is all we know
    return "/".join([*parts[:-1], base])


def function_name(code: CodeType) -> str:
    """The function's qualified name (``Handler.createLock``); its bare name on 3.10,
    whose code objects do not know their qualified name."""
    return getattr(code, "co_qualname", code.co_name)
