"""lockdep.instrument: the service installs lockdep before importing handlers, so an
inversion between two handlers' own threading locks shows on /lockdep and in
lockdep_violations_total."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import DEADLINE, REPO, doc, poll
from .process import ServiceProcess

pytestmark = pytest.mark.slow  # the service as a subprocess

PKG = "tests.service"


def abba(instrument: bool) -> dict[str, Any]:
    d = doc()
    d["lockdep"] = {"instrument": instrument, "on_violation": "log"}
    d["pools"][0] = {
        "name": "main",
        "threads": 1,  # one worker: the two orders never overlap, nothing deadlocks
        "queues": [
            {"name": "forward", "kind": "value", "handler": f"{PKG}.lockorder_a:a_then_b"},
            {"name": "backward", "kind": "value", "handler": f"{PKG}.lockorder_b:b_then_a"},
        ],
    }
    d["producers"] = [
        {
            "name": "once",
            "factory": f"{PKG}.handlers:Once",
            "settings": {"send": [["main", "forward"], ["main", "backward"]]},
        }
    ]
    return d


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Any]:
    started: list[ServiceProcess] = []

    def start(document: dict[str, Any]) -> ServiceProcess:
        svc = ServiceProcess(tmp_path, document)
        started.append(svc)
        return svc

    try:
        yield start
    finally:
        for svc in started:
            svc.stop()


def processed(svc: ServiceProcess) -> float:
    return sum(
        svc.metric(f'threadpool_items_processed_total{{pool="main",queue="{q}"}}') or 0
        for q in ("forward", "backward")
    )


def test_inversion_between_two_handlers_locks_is_on_lockdep_and_counted(run: Any) -> None:
    svc = run(abba(instrument=True))
    poll("both items processed", lambda: processed(svc) == 2)
    status, body = svc.get("/lockdep")
    assert status == 200
    document = json.loads(body)
    (violation,) = document["violations"]
    assert violation["kind"] == "order"
    classes = " ".join(violation["classes"])
    assert "lockorder_a" in classes and "lockorder_b" in classes, violation["classes"]
    names = {c["name"] for c in document["classes"]}
    assert any("lockorder_a" in n for n in names) and any("lockorder_b" in n for n in names)
    assert svc.metric('lockdep_violations_total{kind="order"}') == 1
    svc.wait_log(r"lockdep: possible circular locking dependency detected")
    svc.signal(signal.SIGTERM)
    assert svc.wait(DEADLINE) == 0


def test_without_instrument_the_handlers_locks_are_not_tracked(run: Any) -> None:
    svc = run(abba(instrument=False))
    poll("both items processed", lambda: processed(svc) == 2)
    document = json.loads(svc.get("/lockdep")[1])
    assert document["violations"] == []
    assert not any("lockorder" in c["name"] for c in document["classes"])
    assert svc.metric('lockdep_violations_total{kind="order"}') == 0
    svc.signal(signal.SIGTERM)
    assert svc.wait(DEADLINE) == 0


def replica(direction: str) -> dict[str, Any]:
    """A service that only ever takes the two handlers' locks in one order."""
    d = abba(instrument=True)
    handler = "lockorder_a:a_then_b" if direction == "forward" else "lockorder_b:b_then_a"
    d["pools"][0]["queues"] = [{"name": direction, "kind": "value", "handler": f"{PKG}.{handler}"}]
    d["producers"][0]["settings"] = {"send": [["main", direction]]}
    return d


def test_merge_of_two_replicas_urls_finds_the_inversion_neither_sees(tmp_path: Path) -> None:
    forward, backward = tmp_path / "forward", tmp_path / "backward"
    forward.mkdir()
    backward.mkdir()
    replicas = [
        ServiceProcess(forward, replica("forward")),
        ServiceProcess(backward, replica("backward")),
    ]
    try:
        for svc, queue in zip(replicas, ("forward", "backward"), strict=True):
            poll(
                "its item processed",
                lambda svc=svc, queue=queue: svc.metric(
                    f'threadpool_items_processed_total{{pool="main",queue="{queue}"}}'
                ),
            )
            assert json.loads(svc.get("/lockdep")[1])["violations"] == []
        urls = [f"{svc.url}/lockdep" for svc in replicas]
        alone = lockdep_merge(*urls[:1])
        assert alone.returncode == 0, alone.stdout + alone.stderr
        both = lockdep_merge(*urls)
        assert both.returncode == 1, both.stdout + both.stderr
        assert "cycle 1: " in both.stdout and "lockorder_a" in both.stdout
        assert f"first seen in {urls[0]}" in both.stdout
        assert f"first seen in {urls[1]}" in both.stdout
        for svc in replicas:
            svc.signal(signal.SIGTERM)
            assert svc.wait(DEADLINE) == 0
    finally:
        for svc in replicas:
            svc.stop()


def lockdep_merge(*sources: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lockdep", "merge", *sources],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
