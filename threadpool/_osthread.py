"""What a worker thread asks of the OS: its name, its CPUs, its I/O priority.

Each function acts on the calling thread and returns whether it took effect.
Where the OS lacks the facility (no ``prctl``, no ``sched_setaffinity``, an
unknown ``ioprio_set`` syscall number) it does nothing and returns False; the
pool treats that as "not available here", never as an error. A facility that
exists but refuses (a CPU that is not online, a real-time I/O class without
the privilege) raises OSError, which the pool logs once.

Linux only, through ``ctypes``: ``prctl(PR_SET_NAME)`` (names are cut to 15
bytes, the kernel's limit) and the ``ioprio_set`` syscall. CPU affinity goes
through ``os.sched_setaffinity(0, ...)``, which on Linux binds the calling
thread only.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Iterable
from typing import Any

PR_SET_NAME = 15
NAME_LIMIT = 15  # bytes, without the terminating NUL

IOPRIO_CLASSES = {"realtime": 1, "best-effort": 2, "idle": 3}
IOPRIO_WHO_PROCESS = 1  # with who=0: the calling thread
IOPRIO_CLASS_SHIFT = 13

# ioprio_set's syscall number per machine (it has no libc wrapper).
_IOPRIO_SET_NR = {
    "x86_64": 251,
    "amd64": 251,
    "i386": 289,
    "i686": 289,
    "aarch64": 30,
    "arm64": 30,
    "armv7l": 314,
    "ppc64le": 273,
    "ppc64": 273,
    "s390x": 282,
    "riscv64": 30,
}

_IOPRIO_GET_NR = {machine: nr + 1 for machine, nr in _IOPRIO_SET_NR.items()}

_libc: Any = None
_libc_loaded = False


def _load_libc() -> Any:
    """The C library, loaded once; None off Linux or where it cannot be loaded.

    ``ctypes.CDLL(None)`` is the running process itself, whose symbols include
    libc's; ``libc.so.6`` (glibc's soname) is the fallback where that lacks
    ``prctl``. Never ``ctypes.util.find_library``, which runs ``ldconfig`` (or
    a compiler) in a subprocess: a pool's first worker must not spawn a process
    in its host program (slow, and a fork there is the host's business).
    """
    global _libc, _libc_loaded
    if not _libc_loaded:
        _libc_loaded = True
        if sys.platform.startswith("linux"):
            for name in (None, "libc.so.6"):
                try:
                    libc = ctypes.CDLL(name, use_errno=True)
                except OSError:
                    continue
                if hasattr(libc, "prctl"):
                    _libc = libc
                    break
    return _libc


def _machine() -> str:
    """The machine name (``uname -m``), lower-case; from the ``uname`` system call."""
    return os.uname().machine.lower()


def os_thread_name(name: str) -> bytes:
    """``name`` as the kernel will keep it: UTF-8, at most 15 bytes, not cut mid-character."""
    raw = name.encode("utf-8")
    if len(raw) <= NAME_LIMIT:
        return raw
    return raw[:NAME_LIMIT].decode("utf-8", "ignore").encode("utf-8")


def set_thread_name(name: str) -> bool:
    """Name the calling OS thread (what ``top -H``, ``ps -L`` and gdb show)."""
    libc = _load_libc()
    if libc is None or not hasattr(libc, "prctl"):
        return False
    if libc.prctl(PR_SET_NAME, ctypes.c_char_p(os_thread_name(name)), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_NAME) failed: {os.strerror(err)}")
    return True


def get_thread_name(native_id: int | None = None) -> str | None:
    """The OS name of a thread of this process (default: the caller), or None if unknown."""
    tid = native_id if native_id is not None else threading.get_native_id()
    try:
        with open(f"/proc/self/task/{tid}/comm", encoding="utf-8", errors="replace") as f:
            return f.read().rstrip("\n")
    except OSError:
        return None


def set_cpu_affinity(cpus: Iterable[int]) -> bool:
    """Bind the calling thread to ``cpus``."""
    setaffinity = getattr(os, "sched_setaffinity", None)
    if setaffinity is None or not sys.platform.startswith("linux"):
        return False
    setaffinity(0, set(cpus))
    return True


def ioprio_value(ioclass: str, level: int) -> int:
    """The ``ioprio`` word for a class name and a level 0 (highest) .. 7."""
    return (IOPRIO_CLASSES[ioclass] << IOPRIO_CLASS_SHIFT) | level


def set_io_priority(ioclass: str, level: int) -> bool:
    """Set the calling thread's I/O scheduling class and level (Linux ``ioprio_set``)."""
    libc = _load_libc()
    nr = _IOPRIO_SET_NR.get(_machine())
    if libc is None or nr is None or not hasattr(libc, "syscall"):
        return False
    value = ioprio_value(ioclass, level)
    if libc.syscall(nr, IOPRIO_WHO_PROCESS, 0, value) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"ioprio_set({ioclass}, {level}) failed: {os.strerror(err)}")
    return True


def get_io_priority() -> tuple[str, int] | None:
    """The calling thread's I/O class and level, or None where unknown."""
    libc = _load_libc()
    nr = _IOPRIO_GET_NR.get(_machine())
    if libc is None or nr is None or not hasattr(libc, "syscall"):
        return None
    value = libc.syscall(nr, IOPRIO_WHO_PROCESS, 0)
    if value < 0:
        return None
    names = {v: k for k, v in IOPRIO_CLASSES.items()}
    ioclass = names.get(value >> IOPRIO_CLASS_SHIFT)
    return None if ioclass is None else (ioclass, value & 0x7)
