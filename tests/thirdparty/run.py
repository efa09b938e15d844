"""Third-party test suites under ``pytest --lockdep`` (SPEC §3.9, issue 8).

    python tests/thirdparty/run.py [--plain] [SUITE...]

For each suite (all of them by default): download the project's sdist at the
pinned version with pip, unpack it, install it into the running interpreter's
environment (a venv of its own: ``make thirdparty`` makes it), and run its own
tests, from its own directory with its own pytest configuration, under
``--lockdep``. Every suite must pass and lockdep must report nothing. Tests that
fail here without lockdep as well are deselected, each with its reason; run with
``--plain`` (no lockdep) to check that list still holds.

The sdists are kept in ``.thirdparty/sdists``; each run unpacks them in a fresh
temporary directory, outside this repository, so that no configuration of ours
(``pyproject.toml``'s pytest section) applies to them. Each suite's output is
kept in ``.thirdparty/logs/SUITE.log``; the learned lock
graph in ``.thirdparty/graphs/SUITE.json`` (a run whose graph holds no tracked
class proves nothing, and fails). Exit status: 0 if every suite passed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".thirdparty"
SUITE_TIMEOUT = 900  # seconds; the slowest suite (filelock) takes about 200


@dataclass(frozen=True)
class Suite:
    name: str  # the distribution's name, as pip knows it
    version: str
    # Tests deselected because they fail without lockdep as well: node id -> why.
    deselect: dict[str, str] = field(default_factory=dict)
    pytest_args: tuple[str, ...] = ()


_ROOT_OR_FDS = "fails without lockdep too: descriptor numbers or permissions differ as root"

SUITES = (
    Suite("cachetools", "8.0.2"),
    # fasteners 0.20: its test_eventlet.py runs, with eventlet installed.
    Suite("fasteners", "0.20"),
    Suite(
        "filelock",
        # 3.32.7: the newest whose sdist builds from the registry alone (4.x needs a
        # build backend plugin that is not published there).
        "3.32.7",
        deselect={
            "tests/test_fork_backends.py::test_control_flow_registration_error_rolls_back_descriptor": _ROOT_OR_FDS,  # noqa: E501
            "tests/test_fork_backends.py::test_coroutine_registration_error_rolls_back_descriptor": _ROOT_OR_FDS,  # noqa: E501
            "tests/test_fork_ownership.py::test_reader_directory_registration_failure_closes_descriptor": _ROOT_OR_FDS,  # noqa: E501
            "tests/test_fork_ownership.py::test_reader_directory_registration_and_close_errors_are_grouped": _ROOT_OR_FDS,  # noqa: E501
            "tests/test_soft_stale.py::test_release_without_identity_skips_unlink": _ROOT_OR_FDS,
            "tests/test_strict_soft.py::test_strict_soft_unreadable_claim_fails_closed": (
                "fails without lockdep too: root reads a file whose mode is 0"
            ),
        },
        # Its pytest-randomly is not installed: the order is the files' own.
    ),
    Suite(
        "prometheus_client",
        "0.26.0",
        deselect={
            "tests/test_exposition.py::TestWsgiTLS::test_mtls_untrusted_client_cert_raises": (
                "fails without lockdep too, depending on test order: the handshake "
                "failure arrives as URLError(EOF), not the ssl.SSLError it expects"
            ),
        },
    ),
)


def _env() -> dict[str, str]:
    # The suites' own configuration only: nothing of ours, nothing of the caller's pytest.
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LOCKDEP_", "PYTEST_")) and k != "PYTHONPATH"
    }


def _pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        check=True,
        env=_env(),
    )


def fetch(suite: Suite, into: Path) -> Path:
    """The suite's sdist, downloaded once, unpacked in into; installed into this venv."""
    sdists = WORK / "sdists"
    sdists.mkdir(parents=True, exist_ok=True)
    prefix = f"{suite.name}-{suite.version}"
    archives = sorted(sdists.glob(f"{prefix}.tar.gz"))
    if not archives:
        _pip(
            "download",
            *("--no-binary", ":all:", "--no-deps", "-d", str(sdists)),
            f"{suite.name}=={suite.version}",
        )
        archives = sorted(sdists.glob(f"{prefix}.tar.gz"))
    if not archives:
        raise SystemExit(f"thirdparty: no sdist {prefix}.tar.gz was downloaded")
    with tarfile.open(archives[0]) as archive:
        archive.extractall(into, filter="data")
    _pip("install", "--no-deps", "--force-reinstall", str(archives[0]))
    return into / prefix


def graph_size(path: Path) -> tuple[int, int]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return 0, 0
    return len(data.get("classes", ())), len(data.get("edges", ()))


def lockdep_reports(output: str) -> list[str]:
    """What lockdep said: its violation headers and the plugin's summary lines."""
    return [
        line
        for line in output.splitlines()
        if (line.startswith("lockdep: ") and not line.startswith("lockdep: no violation"))
        or "violation(s) outside any test" in line
    ]


_SUMMARY = re.compile(r"\d+ (passed|failed|errors?|skipped|deselected)\b.* in [\d.]+s")


def run_suite(suite: Suite, plain: bool, scratch: Path) -> bool:
    directory = fetch(suite, scratch)
    logs = WORK / "logs"
    graphs = WORK / "graphs"
    logs.mkdir(exist_ok=True)
    graphs.mkdir(exist_ok=True)
    graph = graphs / f"{suite.name}.json"
    graph.unlink(missing_ok=True)
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfEs"]
    if not plain:
        args += ["--lockdep", "--lockdep-graph", str(graph)]
    for node in suite.deselect:
        args += ["--deselect", node]
    args += suite.pytest_args
    started = time.monotonic()
    try:
        proc = subprocess.run(
            args,
            cwd=directory,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=SUITE_TIMEOUT,
        )
        output, status = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        output = f"{exc.stdout or ''}{exc.stderr or ''}\n(timed out after {SUITE_TIMEOUT} s)"
        status = -1
    elapsed = time.monotonic() - started
    (logs / f"{suite.name}.log").write_text(output if isinstance(output, str) else "")
    summary = next(
        (line for line in reversed(output.splitlines()) if _SUMMARY.search(line)),
        "(no pytest summary)",
    ).strip("= ")
    mode = "plain" if plain else "--lockdep"
    print(f"{suite.name} {suite.version} ({mode}): {summary}; exit {status}; {elapsed:.1f} s")
    for node, reason in suite.deselect.items():
        print(f"  deselected {node}: {reason}")
    reports = lockdep_reports(output)
    for line in reports:
        print(f"  {line}")
    ok = status == 0 and not reports
    if not plain:
        classes, edges = graph_size(graph)
        print(f"  lockdep learned {classes} classes, {edges} edges")
        if classes == 0:
            print("  no tracked lock at all: lockdep was not in effect")
            ok = False
    if not ok:
        print(f"  FAILED: see {logs / (suite.name + '.log')}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plain", action="store_true", help="run without lockdep")
    parser.add_argument("suites", nargs="*", metavar="SUITE", help="default: all")
    options = parser.parse_args(argv)
    known = {suite.name: suite for suite in SUITES}
    unknown = [name for name in options.suites if name not in known]
    if unknown:
        parser.error(f"unknown suite(s) {unknown}; known: {sorted(known)}")
    chosen = [known[name] for name in options.suites] or list(SUITES)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lockdep-thirdparty-") as scratch:
        failed = [
            suite.name for suite in chosen if not run_suite(suite, options.plain, Path(scratch))
        ]
    print(f"thirdparty: the suites took {time.monotonic() - started:.0f} s")
    print(f"thirdparty: {len(chosen) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
