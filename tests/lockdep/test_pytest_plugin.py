"""The pytest plugin, run on a small test file in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # subprocesses

SUITE = textwrap.dedent(
    """
    import threading

    first = threading.Lock()
    second = threading.Lock()

    def test_forward():
        with first, second:
            pass

    def test_backward_in_a_thread():
        def work():
            with second, first:
                pass
        t = threading.Thread(target=work)
        t.start()
        t.join()

    def test_clean():
        with first:
            pass
    """
)


def run_pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(SUITE)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, "test_sample.py"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )


@pytest.mark.parametrize("enable", [["-p", "lockdep.pytest_plugin"], ["--lockdep"]])
def test_violation_fails_the_test_that_triggered_it(tmp_path: Path, enable: list[str]) -> None:
    proc = run_pytest(tmp_path, *enable)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "1 failed, 2 passed" in out
    assert "FAILED test_sample.py::test_backward_in_a_thread" in out
    assert "possible circular locking dependency detected" in out
    assert "lockdep: 1 violation(s) during call of test_sample.py::test_backward_in_a_thread" in out


def test_without_the_plugin_nothing_is_tracked(tmp_path: Path) -> None:
    proc = run_pytest(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout


def test_graph_option_saves_the_graph(tmp_path: Path) -> None:
    proc = run_pytest(tmp_path, "--lockdep", "--lockdep-graph", "graph.json")
    assert proc.returncode == 1
    assert '"format": "lockdep-graph"' in (tmp_path / "graph.json").read_text()
