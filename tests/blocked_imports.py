"""A prologue for subprocess tests: makes prometheus_client and yaml unimportable, to show
that lockdep and the pool core need neither (SPEC 2's layering)."""

from __future__ import annotations

import textwrap

BLOCK_IMPORTS = textwrap.dedent(
    """
    import importlib.abc, sys

    class Blocked(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in ("prometheus_client", "yaml"):
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Blocked())
    """
)
