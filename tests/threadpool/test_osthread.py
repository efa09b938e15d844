"""What a worker asks of the OS: names cut to the kernel's limit, and the facilities
where they exist."""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threadpool import _osthread

from ..conftest import run_in_thread

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


@given(st.text(min_size=1, max_size=40))
def test_os_thread_name_fits_the_kernel_and_keeps_a_prefix(name: str) -> None:
    raw = _osthread.os_thread_name(name)
    assert len(raw) <= _osthread.NAME_LIMIT
    text = raw.decode("utf-8")  # never cut inside a character
    assert name.startswith(text)


@linux
def test_set_thread_name_names_the_calling_thread_only() -> None:
    before = _osthread.get_thread_name()

    def named() -> str | None:
        assert _osthread.set_thread_name("a-name-longer-than-15")
        return _osthread.get_thread_name()

    assert run_in_thread(named) == "a-name-longer-t"
    assert _osthread.get_thread_name() == before


@linux
def test_cpu_affinity_binds_the_calling_thread_only() -> None:
    everything = os.sched_getaffinity(0)
    cpu = min(everything)

    def bound() -> set[int]:
        assert _osthread.set_cpu_affinity([cpu])
        return os.sched_getaffinity(0)

    assert run_in_thread(bound) == {cpu}
    assert os.sched_getaffinity(0) == everything


@linux
def test_io_priority_of_the_calling_thread() -> None:
    def prioritised() -> tuple[str, int] | None:
        if not _osthread.set_io_priority("idle", 0):
            pytest.skip("no ioprio_set on this machine")
        return _osthread.get_io_priority()

    assert run_in_thread(prioritised) in (("idle", 0), None)


def test_ioprio_value_packs_class_and_level() -> None:
    assert _osthread.ioprio_value("best-effort", 4) == (2 << 13) | 4


def test_missing_facilities_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_osthread, "_libc", None)
    monkeypatch.setattr(_osthread, "_libc_loaded", True)
    monkeypatch.delattr(os, "sched_setaffinity", raising=False)
    assert _osthread.set_thread_name("x") is False
    assert _osthread.set_io_priority("idle", 0) is False
    assert _osthread.get_io_priority() is None
    assert _osthread.set_cpu_affinity([0]) is False


def test_loading_libc_runs_no_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    """ctypes.util.find_library runs ldconfig in a subprocess: the C library is loaded
    without it (and without platform's helpers, some of which spawn one too)."""
    import subprocess

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a subprocess was started: {args!r}")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    monkeypatch.setattr(os, "posix_spawn", refuse, raising=False)
    monkeypatch.setattr(os, "fork", refuse, raising=False)
    monkeypatch.setattr(_osthread, "_libc", None)
    monkeypatch.setattr(_osthread, "_libc_loaded", False)
    libc = _osthread._load_libc()
    if sys.platform.startswith("linux"):
        assert libc is not None and hasattr(libc, "prctl")
        assert run_in_thread(lambda: _osthread.set_thread_name("no-subprocess"))
        run_in_thread(_osthread.get_io_priority)
    else:
        assert libc is None
