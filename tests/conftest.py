"""Shared fixtures: every test starts with a fresh lockdep in its default configuration,
and ends with the session's configuration back (under ``--lockdep``, the plugin's)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

import lockdep

DEFAULTS = {
    "enabled": True,
    "on_violation": "raise",
    "backtrace": False,
    "wait_timeout": None,
    "stats": False,
    "max_classes": 131072,
}

# Read when pytest loads this file, after plugins have configured lockdep.
SESSION = lockdep.settings()


@pytest.fixture(autouse=True)
def fresh_lockdep() -> Iterator[None]:
    lockdep.configure(**DEFAULTS)
    lockdep.reset()
    yield
    held = lockdep.held_locks()
    lockdep.configure(**SESSION)
    lockdep.reset()
    assert held == [], f"test left tracked locks held: {held}"


def run_in_thread(target: Callable[[], object], timeout: float = 30.0) -> object:
    """Run target in a new thread, join it, and return its result or re-raise its exception."""
    result: dict[str, object] = {}

    def body() -> None:
        try:
            result["value"] = target()
        except BaseException as exc:  # handed to the caller
            result["error"] = exc

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "thread did not finish in time"
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result.get("value")


@pytest.fixture
def collected() -> Iterator[list[lockdep.Violation]]:
    """Violations delivered to a callable instead of raised."""
    seen: list[lockdep.Violation] = []
    lockdep.configure(on_violation=seen.append)
    yield seen


@pytest.fixture
def installed() -> Iterator[None]:
    """lockdep.install() for the test (left in place if the session had it already)."""
    already = lockdep.installed()
    lockdep.install()
    yield
    if not already:
        lockdep.uninstall()
