"""Class names for allocation sites: import paths, the same wherever a process starts."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import lockdep
from lockdep.naming import module_path

ROOT = Path(__file__).resolve().parents[2]


def test_stdlib_module_is_named_from_the_stdlib_root() -> None:
    code = logging.Handler.createLock.__code__
    assert module_path(code, vars(logging)) == "<stdlib>/logging/__init__.py"


def test_package_module_is_named_by_its_import_path() -> None:
    code = test_package_module_is_named_by_its_import_path.__code__
    assert module_path(code, globals()) == "tests/lockdep/test_naming.py"


def test_main_script_is_named_by_its_file_and_generated_code_as_it_is() -> None:
    code = compile("x = 1", "/some/where/prog.py", "exec")
    assert module_path(code, {"__name__": "__main__", "__spec__": None}) == "prog.py"
    generated = compile("x = 1", "<string>", "exec")
    assert module_path(generated, {"__name__": "dataclasses"}) == "<string>"


def test_module_run_with_dash_m_is_named_by_its_spec() -> None:
    class Spec:
        name = "tool.cli"

    code = compile("x = 1", "/opt/app/tool/cli.py", "exec")
    assert module_path(code, {"__name__": "__main__", "__spec__": Spec()}) == "tool/cli.py"


def test_foreign_globals_fall_back_to_the_file_name() -> None:
    code = compile("x = 1", "/opt/app/other.py", "exec")
    assert module_path(code, {"__name__": "tool.cli"}) == "other.py"


def test_a_lock_made_while_its_module_is_imported_needs_nothing_of_that_module() -> None:
    # sysconfig (3.12+) makes an RLock while it is imported; naming it once asked
    # sysconfig for its paths and crashed every program at its first lock.
    program = textwrap.dedent(
        """
        import sys, threading, lockdep
        lockdep.install()
        sys.modules.pop("sysconfig", None)
        import sysconfig
        lock = threading.RLock()
        with lock:
            pass
        print(sysconfig.get_paths()["stdlib"] != "")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"


def test_names_do_not_depend_on_the_current_directory(tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "shop").mkdir(parents=True)
    (app / "shop" / "__init__.py").write_text("")
    (app / "shop" / "stock.py").write_text(
        "import threading\nclass Stock:\n    def __init__(self):\n"
        "        self.lock = threading.Lock()\n        self.log = threading.Lock()\n"
    )
    (app / "main.py").write_text(
        "from shop.stock import Stock\ns = Stock()\nwith s.lock:\n    with s.log:\n        pass\n"
    )
    names = []
    for n, cwd in enumerate((tmp_path, app / "shop")):
        graph = tmp_path / f"g{n}.json"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(
            [sys.executable, "-m", "lockdep", "run", "--graph", str(graph), str(app / "main.py")],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        edges = json.loads(graph.read_text())["edges"]
        names.append(sorted((e["from"], e["to"]) for e in edges if "shop/" in e["from"]))
    expected = ("shop/stock.py:4 in Stock.__init__", "shop/stock.py:5 in Stock.__init__")
    if sys.version_info < (3, 11):  # no qualified names in 3.10's code objects
        expected = tuple(n.replace("Stock.__init__", "__init__ for Stock") for n in expected)
    assert names[0] == names[1] == [expected]


@pytest.mark.usefixtures("installed")
def test_tracked_lock_name_is_portable() -> None:
    lock = threading.Lock()
    with lock:
        (held,) = lockdep.held_locks()
    assert held.name.startswith("tests/lockdep/test_naming.py:")
    assert os.sep + "tests" not in held.name
