"""The README's threadpool examples run as written and print what their comments say.

Each example is the ```python block after a ``<!-- readme-test: NAME -->`` line; the
comment at the end of a print() line is its expected output. Each runs in a subprocess,
as a user pasting it into a file would run it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
ROOT = README.parent


def examples() -> dict[str, str]:
    text = README.read_text()
    found = re.findall(r"<!-- readme-test: (\w+) -->\n```python\n(.*?)```", text, re.S)
    return dict(found)


def expected_output(code: str) -> list[str]:
    return [
        m.group(1).strip()
        for line in code.splitlines()
        if (m := re.search(r"^\s*print\(.*\)\s*#\s*(.*)$", line))
    ]


def test_the_readme_has_the_examples() -> None:
    assert set(examples()) >= {"executor", "asyncio", "sharded"}


@pytest.mark.parametrize("name", ["executor", "asyncio", "sharded"])
@pytest.mark.slow
def test_a_readme_example_prints_what_it_says(name: str) -> None:
    code = examples()[name]
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == expected_output(code), run.stderr
