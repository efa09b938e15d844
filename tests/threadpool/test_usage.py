"""The usage the documents promise, run as written: SPEC 4.2's snippet and the README's
example, with prometheus_client and yaml made unimportable (the pool core needs neither)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.blocked_imports import BLOCK_IMPORTS

REPO = Path(__file__).resolve().parents[2]

SPEC_SNIPPET = textwrap.dedent(
    """
    seen, flushed = [], []
    def handle_op(item, handle): seen.append(item)
    def flush_many(items, handle): flushed.extend(items)
    item = "op-1"

    from threadpool import ThreadPool, HeartbeatMap, WorkQueueVal, BatchWorkQueue, PointerWQ, WorkQueue
    hb = HeartbeatMap("osd")
    pool = ThreadPool("osd_tp", num_threads=4, thread_name="tp_osd", heartbeat_map=hb)
    ops = WorkQueueVal("ops", process=handle_op, finish=None, timeout=15, suicide_timeout=150)
    batch = BatchWorkQueue("flush", process=flush_many, batch_size=64)   # process(items, handle)
    pool.add_work_queue(ops); pool.add_work_queue(batch)
    pool.start()
    ops.queue(item)            # handle_op(item, handle) runs on a worker; handle is the TPHandle
    pool.drain(ops); pool.stop()

    assert seen == ["op-1"], seen
    assert "prometheus_client" not in sys.modules and "yaml" not in sys.modules
    print("spec ok")
    """  # noqa: E501 (the SPEC's line, as written)
)


def run(code: str) -> str:
    child = subprocess.run(
        [sys.executable, "-c", BLOCK_IMPORTS + code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 0, child.stderr
    return child.stdout


@pytest.mark.slow
def test_spec_usage_snippet_runs_as_written_without_prometheus_or_yaml() -> None:
    assert run(SPEC_SNIPPET).strip() == "spec ok"


@pytest.mark.slow
def test_readme_example_runs_as_written() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## threadpool in one minute") :]
    example = re.search(r"```python\n(.*?)```", section, re.S)
    assert example is not None
    out = run(example.group(1))
    assert out.strip() == "100 4950 True"
