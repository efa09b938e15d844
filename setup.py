"""Builds lockdep's optional C extension (the hot path, see lockdep/fastpath.py).

Everything else is in pyproject.toml. The extension is optional: where it cannot
be built (no C compiler, no Python headers) the install goes on without it and
lockdep uses its pure-Python hot path. It is CPython's, with the GIL: other
interpreters and free-threaded builds get pure Python.
"""

import platform
import sysconfig

from setuptools import Extension, setup

WANTED = platform.python_implementation() == "CPython" and not sysconfig.get_config_var(
    "Py_GIL_DISABLED"
)

setup(
    ext_modules=[
        Extension("lockdep._fastpath", sources=["lockdep/_fastpath.c"], optional=True),
    ]
    if WANTED
    else [],
)
