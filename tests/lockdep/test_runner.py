"""python -m lockdep run / merge, and graphs saved by LOCKDEP_GRAPH, in subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # subprocesses

ROOT = Path(__file__).resolve().parents[2]


def lockdep(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lockdep", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source))
    return path


def test_example_abba_is_reported_and_exits_66() -> None:
    proc = lockdep("run", "examples/abba.py")
    assert proc.returncode == 66, proc.stderr
    assert "possible circular locking dependency detected" in proc.stderr
    assert "examples/abba.py" in proc.stderr and "in reader" in proc.stderr
    assert "done: no deadlock in this run" in proc.stdout
    assert "1 distinct violation(s)" in proc.stderr


def test_clean_program_exits_with_its_status(tmp_path: Path) -> None:
    script = write(
        tmp_path / "clean.py",
        """
        import sys, threading, queue
        a = threading.Lock()
        b = threading.Lock()
        for _ in range(3):
            with a, b:
                pass
        q = queue.Queue()
        t = threading.Thread(target=q.put, args=(1,))
        t.start(); t.join()
        print(q.get(), sys.argv[1:])
        sys.exit(int(sys.argv[1]))
        """,
    )
    proc = lockdep("run", str(script), "0")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1 ['0']"
    assert proc.stderr == ""
    assert lockdep("run", str(script), "3").returncode == 3


def test_program_failure_status_wins_over_66(tmp_path: Path) -> None:
    script = write(
        tmp_path / "fails.py",
        """
        import threading
        a = threading.Lock()
        b = threading.Lock()
        with a, b: pass
        with b, a: pass
        raise SystemExit("giving up")
        """,
    )
    proc = lockdep("run", str(script))
    assert proc.returncode == 1
    assert "giving up" in proc.stderr and "circular locking" in proc.stderr


def test_module_form_and_violation_in_a_late_thread(tmp_path: Path) -> None:
    write(
        tmp_path / "latethread.py",
        """
        import threading
        a = threading.Lock()
        b = threading.Lock()
        def forward():
            with a, b: pass
        def backward():
            with b, a: pass
        forward()
        threading.Thread(target=backward).start()  # not joined by the program
        """,
    )
    proc = lockdep("run", "-m", "latethread", cwd=tmp_path)
    assert proc.returncode == 66, proc.stderr
    assert "circular locking" in proc.stderr


def test_usage_errors() -> None:
    assert lockdep("run").returncode == 2
    assert lockdep("run", "no/such/script.py").returncode == 2
    assert lockdep("frobnicate").returncode == 2
    assert "no such script" in lockdep("run", "no/such/script.py").stderr


ORDER = """
import sys, threading, lockdep
a = lockdep.Mutex("accounts")
b = lockdep.Mutex("journal")
first, second = (a, b) if sys.argv[1] == "forward" else (b, a)
with first, second:
    pass
"""


def test_merge_finds_an_inversion_split_across_two_processes(tmp_path: Path) -> None:
    script = write(tmp_path / "order.py", ORDER)
    forward, backward = tmp_path / "forward.json", tmp_path / "backward.json"
    for direction, graph in (("forward", forward), ("backward", backward)):
        proc = subprocess.run(
            [sys.executable, str(script), direction],
            env={**os.environ, "LOCKDEP_GRAPH": str(graph), "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr  # each is clean alone
        assert json.loads(graph.read_text())["edges"]
    assert lockdep("merge", str(forward)).returncode == 0
    proc = lockdep("merge", str(forward), str(backward))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "cycle 1: accounts -> journal -> accounts" in proc.stdout
    assert "order.py (pid" in proc.stdout and "taken at" in proc.stdout
    assert "1 cycle(s)" in proc.stdout


def test_concurrent_saves_to_one_file_lose_nothing(tmp_path: Path) -> None:
    script = write(
        tmp_path / "many.py",
        """
        import sys, lockdep
        n = int(sys.argv[1])
        a = lockdep.Mutex(f"outer{n}")
        b = lockdep.Mutex(f"inner{n}")
        with a, b:
            pass
        """,
    )
    graph = tmp_path / "shared.json"
    env = {**os.environ, "LOCKDEP_GRAPH": str(graph), "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, str(script), str(n)], env=env) for n in range(8)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 8
    edges = {(e["from"], e["to"]) for e in json.loads(graph.read_text())["edges"]}
    assert edges == {(f"outer{n}", f"inner{n}") for n in range(8)}


def test_run_saves_the_graph_with_sites(tmp_path: Path) -> None:
    graph = tmp_path / "g.json"
    proc = lockdep("run", "--graph", str(graph), "examples/abba.py")
    assert proc.returncode == 66
    lines = (ROOT / "examples" / "abba.py").read_text().splitlines()
    cache = 1 + next(i for i, text in enumerate(lines) if text.startswith("cache_lock ="))
    index = 1 + next(i for i, text in enumerate(lines) if text.startswith("index_lock ="))
    data = json.loads(graph.read_text())
    (edge,) = [e for e in data["edges"] if e["from"].startswith("abba.py:")]
    assert (edge["from"], edge["to"]) == (
        f"abba.py:{cache} in <module>",
        f"abba.py:{index} in <module>",
    )
    assert "in writer" in edge["to_site"] and edge["run"].startswith("abba.py (pid ")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ('{"format": "other"}', "not a lockdep graph"),
        ('{"format": "lockdep-graph", "version": 9, "edges": []}', "unsupported version"),
        ('{"format": "lockdep-graph", "version": 1, "edges": [{"from": 1}]}', "malformed"),
    ],
)
def test_merge_rejects_bad_files_clearly(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    proc = lockdep("merge", str(bad))
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and message in proc.stderr


def test_suppressed_violation_does_not_fail_the_run(tmp_path: Path) -> None:
    lines = (ROOT / "examples" / "abba.py").read_text().splitlines()
    sites = [
        f'"abba.py:{i + 1} in <module>"'
        for i, text in enumerate(lines)
        if text.endswith("threading.Lock()")
    ]
    rules = tmp_path / "known.suppress"
    rules.write_text(f"# the example's inversion, on purpose\norder {' '.join(sites)}\n")
    proc = lockdep("run", "--suppress", str(rules), "examples/abba.py")
    assert proc.returncode == 0, proc.stderr
    assert "circular locking" not in proc.stderr
    assert f"suppressed by {rules}:2: order violation" in proc.stderr
    other = tmp_path / "other.suppress"
    other.write_text("order some/other.py:*\n")
    assert lockdep("run", "--suppress", str(other), "examples/abba.py").returncode == 66


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("explode A B\n", "kind must be one of"),
        ("order\n", "no class pattern"),
        ('order "unterminated\n', "No closing quotation"),
    ],
)
def test_bad_suppression_file(tmp_path: Path, content: str, message: str) -> None:
    rules = tmp_path / "bad.suppress"
    rules.write_text(content)
    proc = lockdep("run", "--suppress", str(rules), "examples/abba.py")
    assert proc.returncode == 2
    assert f"{rules}:1" in proc.stderr and message in proc.stderr


# What the runner needs only for an option not given, a violation, ``merge`` or
# a public name the program does not use; a program that imports none of these
# itself must not pay for them at start-up.
NOT_AT_START_UP = [
    "lockdep.cond",
    "lockdep.persist",
    "lockdep.queries",
    "lockdep.remote",
    "lockdep.report",
    "lockdep.shared_mutex",
    "lockdep.suppress",
    "pkgutil",  # runpy.run_path's: a source file is run without it
    "shlex",
    "typing",  # pkgutil's
]


def test_run_imports_only_what_the_program_needs(tmp_path: Path) -> None:
    script = write(
        tmp_path / "trivial.py",
        """
        import sys, threading
        with threading.Lock():
            pass
        print(" ".join(sorted(sys.modules)))
        """,
    )
    proc = lockdep("run", str(script))
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.split())
    assert "lockdep.tracker" in loaded  # the listing is the runner's own
    assert sorted(loaded.intersection(NOT_AT_START_UP)) == []


def test_lazily_imported_public_names_work_under_the_runner(tmp_path: Path) -> None:
    graph = tmp_path / "graph.json"
    script = write(
        tmp_path / "lazy.py",
        f"""
        import lockdep
        m = lockdep.SharedMutex("lazy.shared")
        c = lockdep.Cond(lockdep.Mutex("lazy.mutex"))
        with m.read():
            pass
        lockdep.save({str(graph)!r})
        print(type(m).__module__, type(c).__module__)
        """,
    )
    proc = lockdep("run", str(script))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["lockdep.shared_mutex", "lockdep.cond"]
    assert json.loads(graph.read_text())["classes"]


def test_install_imports_no_typing() -> None:
    # lockdep's modules take typing's names only for type checkers; a program that
    # imports lockdep does not pay for typing (nor does ``run``'s: see
    # test_run_imports_only_what_the_program_needs).
    code = "import sys, lockdep; lockdep.install(); print('typing' in sys.modules)"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False"]


# What a program sees of its __main__ module; runpy.run_path set it up before
# the runner ran scripts itself.
MAIN_FACTS = """
import pickle, sys

class Point:
    def __init__(self, x):
        self.x = x

def f(x: int) -> None:
    pass

main = sys.modules["__main__"]
print(__name__, __file__, __spec__, __loader__, repr(__package__), __cached__, __doc__)
print(main.__dict__ is globals(), type(__builtins__).__name__, list(globals())[:8])
print(f.__annotations__)  # evaluated: no future import leaks in
print(sys.argv, sys.path[0])
print(pickle.loads(pickle.dumps(Point(3))).x, type(pickle.loads(pickle.dumps(Point(3)))))
"""


def python(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def test_a_script_runs_as___main___as_runpy_ran_it(tmp_path: Path) -> None:
    script = str(write(tmp_path / "facts.py", MAIN_FACTS))
    via_runpy = python(
        "-c",
        "import os, runpy, sys; sys.argv = sys.argv[1:]; "
        "sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0])); "
        "runpy.run_path(sys.argv[0], run_name='__main__')",
        script,
        "a",
        "b",
    )
    assert via_runpy.returncode == 0, via_runpy.stderr
    proc = lockdep("run", script, "a", "b")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == via_runpy.stdout
    # What a program does with its __main__ is as under ``python script.py``
    # (which differs in __loader__, __package__ and __builtins__ only).
    plain = python(script, "a", "b").stdout.splitlines()
    assert proc.stdout.splitlines()[2:] == plain[2:]
    assert "<class '__main__.Point'>" in plain[-1]


def test_a_programs_error_prints_as_under_python(tmp_path: Path) -> None:
    failing = write(
        tmp_path / "failing.py",
        """
        def fail():
            raise ValueError("boom")
        fail()
        """,
    )
    broken = write(tmp_path / "broken.py", "x = (\n")
    for script in (failing, broken):
        plain = python(str(script))
        proc = lockdep("run", str(script))
        assert (proc.returncode, proc.stderr) == (1, plain.stderr), proc.stderr
    assert "Traceback" in python(str(failing)).stderr


def test_directories_and_compiled_files_run_as_under_runpy(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    write(app / "__main__.py", "import sys; print(__name__, sys.argv[1:])")
    proc = lockdep("run", str(app), "x")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["__main__", "['x']"]

    source = write(tmp_path / "compiled.py", "import sys; print(__name__, sys.argv[1:])")
    compiled = tmp_path / "compiled.pyc"
    made = python("-m", "py_compile", str(source))
    assert made.returncode == 0, made.stderr
    (cached,) = (tmp_path / "__pycache__").glob("compiled.*.pyc")
    cached.rename(compiled)
    proc = lockdep("run", str(compiled), "y")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["__main__", "['y']"]
