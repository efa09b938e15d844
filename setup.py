"""Builds lockdep's optional C extension (the hot path, see lockdep/fastpath.py).

Everything else is in pyproject.toml. The extension is optional: where it cannot
be built (no C compiler, no Python headers) the install goes on without it and
lockdep uses its pure-Python hot path.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("lockdep._fastpath", sources=["lockdep/_fastpath.c"], optional=True),
    ]
)
