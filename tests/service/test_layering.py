"""SPEC 2's layering: lockdep and the pool core import without prometheus_client or yaml;
only the service needs them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.blocked_imports import BLOCK_IMPORTS

from .conftest import REPO

pytestmark = pytest.mark.slow  # subprocesses

SCRIPT = BLOCK_IMPORTS + textwrap.dedent(
    """
    import importlib, pkgutil
    import lockdep, threadpool

    imported = []
    for package in (lockdep, threadpool):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name.startswith("threadpool.service") or info.name == "lockdep.pytest_plugin":
                continue
            importlib.import_module(info.name)
            imported.append(info.name)
    assert "prometheus_client" not in sys.modules and "yaml" not in sys.modules
    try:
        import threadpool.service.config
    except ImportError as exc:
        print("service blocked:", exc)
    print(" ".join(sorted(imported)))
    """
)


def test_lockdep_and_the_pool_core_import_without_prometheus_client_or_yaml() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    blocked, modules = result.stdout.splitlines()
    # The blocker works: the service, which needs yaml, cannot import.
    assert blocked == "service blocked: yaml is blocked in this test"
    imported = set(modules.split())
    core = {"threadpool.pool", "threadpool.worker", "threadpool.heartbeat", "threadpool.queues"}
    core |= {"threadpool.pointer", "threadpool.__main__", "lockdep.tracker", "lockdep.__main__"}
    assert core <= imported, core - imported
