"""deploy/: the systemd unit passes `systemd-analyze verify`, the Prometheus sample
`promtool check config`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, binary

pytestmark = pytest.mark.slow  # subprocesses: promtool, systemd-analyze

UNIT = REPO / "deploy" / "threadpool.service"


def directives(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#")
    return {key.strip(): value.strip() for key, value in pairs}


def test_unit_is_type_notify_with_a_watchdog_reload_and_the_serve_command() -> None:
    d = directives(UNIT.read_text())
    assert d["Type"] == "notify" and int(d["WatchdogSec"]) > 0
    assert d["ExecStart"].endswith("threadpool serve --config /etc/threadpool/config.yaml")
    assert d["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert d["RestartPreventExitStatus"] == "2"  # an invalid configuration


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify wants ExecStart's program to exist: point it at this interpreter.
    text = UNIT.read_text().replace("/opt/threadpool/bin/threadpool", sys.executable)
    unit = tmp_path / "threadpool.service"
    unit.write_text(text)
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, timeout=60)
    report = (result.stdout + result.stderr).decode()
    assert result.returncode == 0 and not report.strip(), report


def test_sample_prometheus_config_passes_promtool() -> None:
    result = subprocess.run(
        [binary("promtool"), "check", "config", str(REPO / "deploy" / "prometheus.yml")],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
