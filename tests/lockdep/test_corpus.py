"""The corpus: small unannotated programs, run as a user would run them, judged by what
lockdep says about them (SPEC §3.9, "Unannotated code").

Each program in ``corpus/`` is a ``.py`` file, or a directory whose entry file
(``main.py``, or ``conftest.py`` for a pytest project) carries the header. The
header is a few comment lines near the top:

    # expect: order | recursive | clean
    # mode: run                    (default) python -m lockdep run prog.py
    # mode: merge ARG1 ARG2        the program run twice, once with each argument,
                                   from two different directories, each saving its
                                   graph; then python -m lockdep merge
    # mode: pytest OPTION...       the directory is a test project: python -m pytest OPTION...

A line ending in ``# site`` is an acquisition the report must name (file and line):
the one being taken and the earlier ones of the opposite order. A report must name
them, must be the only violation of the run, and must not point into the standard
library. A ``clean`` program must run to its end with nothing reported. Each program
that must be reported has a safe twin, ``<name>_safe``: the same program with the bug
fixed, which must stay clean.

The programs never deadlock for real: the two halves of an inversion run one after
the other (a thread is joined before the next one starts), or use acquire timeouts;
lockdep reports and lets the program go on. Every subprocess has a timeout.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parent / "corpus"
TIMEOUT = 60  # seconds, for each subprocess; the slowest program needs about one

KIND_TITLES = {
    "order": "possible circular locking dependency detected",
    "recursive": "possible recursive locking detected",
}
EXPECTATIONS = ("order", "recursive", "clean")
MODES = ("run", "merge", "pytest")
EXIT_VIOLATION = 66

_HEADER = re.compile(r"^# (expect|mode):(.*)$")
_SITE_MARK = re.compile(r"#\s*site\s*$")
# A site as reports print it: `... at /path/to/file.py:12 in function`.
_SITE = re.compile(r"\bat (?P<path>\S+):(?P<line>\d+) in \S")
_RULE = "=" * 64
_STDLIB_DIRS = tuple(
    os.path.normpath(sysconfig.get_paths()[key]) + os.sep for key in ("stdlib", "platstdlib")
)


@dataclass(frozen=True)
class Program:
    name: str
    path: Path  # a .py file, or a directory
    entry: Path  # the file holding the header
    expect: str
    mode: str
    args: tuple[str, ...]
    sites: frozenset[tuple[str, int]]  # (file name, line) the report must name

    @property
    def is_dir(self) -> bool:
        return self.path.is_dir()


def _sources(path: Path) -> list[Path]:
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


def load(path: Path) -> Program:
    if path.is_dir():
        entry = path / "main.py"
        if not entry.exists():
            entry = path / "conftest.py"
    else:
        entry = path
    header: dict[str, str] = {}
    for line in entry.read_text().splitlines()[:40]:
        match = _HEADER.match(line)
        if match:
            header[match.group(1)] = match.group(2).strip()
    expect = header.get("expect", "")
    mode, *args = (header.get("mode") or "run").split()
    sites = {
        (source.name, number)
        for source in _sources(path)
        for number, text in enumerate(source.read_text().splitlines(), 1)
        if _SITE_MARK.search(text)
    }
    return Program(
        name=path.stem if path.is_file() else path.name,
        path=path,
        entry=entry,
        expect=expect,
        mode=mode,
        args=tuple(args),
        sites=frozenset(sites),
    )


def programs() -> list[Program]:
    found = []
    for path in sorted(CORPUS.iterdir()):
        if path.name.startswith((".", "_")) or path.name == "conftest.py":
            continue
        if path.suffix == ".py" or (path.is_dir() and any(path.glob("*.py"))):
            found.append(load(path))
    return found


PROGRAMS = programs()


# --- running --------------------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    # Not CI either: under CI pytest prints failure messages whole in its short
    # summary, and a program's report would appear twice.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LOCKDEP_", "PYTEST_")) and k != "CI"
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            args, cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=TIMEOUT
        )
    except subprocess.TimeoutExpired as exc:
        out, err = (
            part.decode(errors="replace") if isinstance(part, bytes) else part or ""
            for part in (exc.stdout, exc.stderr)
        )
        pytest.fail(f"timed out after {TIMEOUT} s: {' '.join(args)}\n{out}{err}")


def _install(program: Program, into: Path) -> Path:
    """A copy of the program in into (the corpus directory stays untouched)."""
    target = into / program.path.name
    if program.is_dir:
        shutil.copytree(program.path, target, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        shutil.copy(program.path, target)
    return target


@dataclass
class Outcome:
    """What a program's run gave: the status judged, and the text holding the reports."""

    status: int
    text: str
    expected_status: int
    transcript: str


def run_program(program: Program, tmp_path: Path) -> Outcome:
    installed = _install(program, tmp_path)
    if program.mode == "run":
        script = installed / "main.py" if program.is_dir else installed
        proc = _run([sys.executable, "-m", "lockdep", "run", str(script)], cwd=tmp_path)
        return Outcome(
            proc.returncode,
            proc.stderr,
            EXIT_VIOLATION if program.expect != "clean" else 0,
            _transcript(proc),
        )
    if program.mode == "merge":
        return _run_merge(program, installed, tmp_path)
    if program.mode == "pytest":
        proc = _run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *program.args],
            cwd=installed,
        )
        return Outcome(
            proc.returncode,
            proc.stdout + proc.stderr,
            1 if program.expect != "clean" else 0,
            _transcript(proc),
        )
    raise AssertionError(f"{program.name}: unknown mode {program.mode!r}")


def _run_merge(program: Program, installed: Path, tmp_path: Path) -> Outcome:
    # The two halves from two directories: one names the script through "..", the
    # other from where it lies; one saves with --graph, the other with LOCKDEP_GRAPH.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    first, second = program.args
    graphs = [elsewhere / "first.json", installed / "second.json"]
    runs = [
        _run(
            [
                sys.executable,
                *("-m", "lockdep", "run", "--graph", "first.json"),
                os.path.join(os.pardir, installed.name, "main.py"),
                first,
            ],
            cwd=elsewhere,
        ),
        _run(
            [sys.executable, "-m", "lockdep", "run", "main.py", second],
            cwd=installed,
            LOCKDEP_GRAPH="second.json",
        ),
    ]
    transcript = "\n".join(_transcript(proc) for proc in runs)
    for proc in runs:
        # Each half alone is a correct program: nothing to report within one process.
        assert proc.returncode == 0 and proc.stderr == "", transcript
    merged = _run([sys.executable, "-m", "lockdep", "merge", *map(str, graphs)], cwd=tmp_path)
    return Outcome(
        merged.returncode,
        merged.stdout,
        1 if program.expect != "clean" else 0,
        transcript + "\n" + _transcript(merged),
    )


def _transcript(proc: subprocess.CompletedProcess[str]) -> str:
    return (
        f"$ {' '.join(map(str, proc.args))}\n[exit {proc.returncode}]\n"
        f"--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}"
    )


# --- judging --------------------------------------------------------------------


def reports(text: str) -> list[str]:
    """The violation reports in a run's output, each from its title to its closing rule."""
    found = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("lockdep: possible ") or line.startswith("lockdep: bad unlock"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j] == _RULE), len(lines))
            found.append("\n".join(lines[i:end]))
    return found


def merge_cycles(text: str) -> list[str]:
    """The cycles printed by ``lockdep merge``, each with its edges' sites."""
    return [block for block in re.split(r"\n(?=cycle \d+:)", text) if block.startswith("cycle ")]


def named_sites(report: str) -> set[tuple[str, int]]:
    return {(os.path.basename(m["path"]), int(m["line"])) for m in _SITE.finditer(report)}


def stdlib_sites(report: str) -> list[str]:
    return [
        m.group(0)
        for m in _SITE.finditer(report)
        if m["path"].startswith(("<stdlib>", "<frozen", "<string>"))
        or os.path.normpath(m["path"]).startswith(_STDLIB_DIRS)
    ]


def judge(program: Program, outcome: Outcome) -> None:
    context = f"{program.name} ({program.expect}, {program.mode})\n{outcome.transcript}"
    if program.mode == "merge":
        found = merge_cycles(outcome.text)
        title_seen = bool(found)
    else:
        found = reports(outcome.text)
        title_seen = any(KIND_TITLES.get(program.expect, "\0") in r for r in found)
    if program.expect == "clean":
        assert found == [], f"false report:\n{context}"
        assert outcome.status == outcome.expected_status, context
        return
    assert found, f"missed: no report\n{context}"
    assert title_seen, f"reported as the wrong kind (want {program.expect})\n{context}"
    assert len(found) == 1, f"{len(found)} reports, want one\n{context}"
    report = found[0]
    missing = sorted(program.sites - named_sites(report))
    assert not missing, f"the report does not name {missing}\n{context}"
    assert not stdlib_sites(report), f"the report points into the stdlib\n{context}"
    assert "<stdlib>/" not in report, f"the report names a stdlib class\n{context}"
    assert outcome.status == outcome.expected_status, context


# --- the tests ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("program", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_corpus_program(program: Program, tmp_path: Path) -> None:
    judge(program, run_program(program, tmp_path))


def test_corpus_headers_are_well_formed() -> None:
    assert len(PROGRAMS) >= 30
    for program in PROGRAMS:
        assert program.expect in EXPECTATIONS, (program.name, program.expect)
        assert program.mode in MODES, (program.name, program.mode)
        if program.mode == "merge":
            assert len(program.args) == 2, program.name
        if program.mode == "pytest":
            assert program.is_dir, program.name
        if program.expect == "clean":
            assert not program.sites, f"{program.name}: site marks in a clean program"
        else:
            # The acquisition being taken and at least one earlier one of the other order.
            assert len(program.sites) >= 2, f"{program.name}: mark its acquisition sites"


def test_every_reported_program_has_a_safe_twin() -> None:
    by_name = {p.name: p for p in PROGRAMS}
    for program in PROGRAMS:
        if program.expect == "clean":
            continue
        twin = by_name.get(program.name + "_safe")
        assert twin is not None, f"{program.name} has no safe twin"
        assert twin.expect == "clean", twin.name
        assert (twin.mode, twin.args, twin.is_dir) == (
            program.mode,
            program.args,
            program.is_dir,
        ), twin.name


def test_judge_finds_sites_and_stdlib_paths() -> None:
    """The judge's reading of a report, on a report as report.py prints it."""
    stdlib = os.path.join(_STDLIB_DIRS[0], "logging", "__init__.py")
    report = (
        "lockdep: possible circular locking dependency detected\n"
        '  "bank.py:9" at /tmp/x/bank.py:21 in transfer\n'
        f"        then b taken at {stdlib}:916 in acquire\n"
    )
    assert named_sites(report) == {("bank.py", 21), ("__init__.py", 916)}
    assert stdlib_sites(report) == [f"at {stdlib}:916 in a"]
    text = f"noise\n{report}{_RULE}\nlockdep: 1 distinct violation(s), 1 in all\n"
    assert reports(text) == [report.rstrip("\n")]
