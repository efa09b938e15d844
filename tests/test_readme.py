"""The README's lockdep example, pasted into an interactive prompt, prints the report."""

from __future__ import annotations

import code
import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_lockdep_example_prints_an_order_report() -> None:
    text = README.read_text()
    match = re.search(r"```python\n(import lockdep, threading\n.*?)```", text, re.S)
    assert match, "the README's lockdep example is missing"
    console = code.InteractiveConsole()
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        for line in match.group(1).splitlines():
            console.push(line)
        console.push("")
    printed = out.getvalue()
    assert "Traceback" not in printed, printed
    assert "possible circular locking dependency detected" in printed
    assert "a -> b" in printed and "in backward" in printed and "in forward" in printed
