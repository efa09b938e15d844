"""Builds the optional C extensions: lockdep's hot path (see lockdep/fastpath.py) and
the entries of threadpool's queues with deadlines (see threadpool/timeline.py).

Everything else is in pyproject.toml. The extensions are optional: where they
cannot be built (no C compiler, no Python headers) the install goes on without
them and both use their pure-Python twins. They are CPython's, with the GIL:
other interpreters and free-threaded builds get pure Python.
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
        Extension("threadpool._timeline", sources=["threadpool/_timeline.c"], optional=True),
    ]
    if WANTED
    else [],
)
