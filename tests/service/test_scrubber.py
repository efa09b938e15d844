"""scrubber.py: the default workload hashes small files in batches and large ones in chunks,
tallies results in a finish step, reports changed files, and never floods its queues."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from threadpool import HeartbeatMap
from threadpool.service.config import parse
from threadpool.service.producers import ProducerContext
from threadpool.service.runtime import Runtime
from threadpool.service.scrubber import Scrubber

from .conftest import DEADLINE, REPO

CHUNK = 4096


def scrub_pools(threads: int = 2, results: bool = True) -> Any:
    """The pools of the shipped config.yaml, sized for a test."""
    shipped = yaml.safe_load((REPO / "config.yaml").read_text())
    (pool,) = shipped["pools"]
    for key in ("min_threads", "max_threads", "idle_timeout"):
        pool.pop(key)
    pool["threads"] = threads
    if not results:
        pool["queues"] = [q for q in pool["queues"] if q["name"] != "results"]
    return parse(yaml.safe_dump({"pools": [pool]}), "config.yaml", REPO).pools


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    (root / "skipme").mkdir()
    (root / "a.txt").write_bytes(b"alpha")
    (root / "sub" / "b.txt").write_bytes(b"beta" * 100)
    (root / "big.bin").write_bytes(bytes(range(256)) * 40)  # 10240 bytes: 3 chunks
    (root / "skipme" / "c.txt").write_bytes(b"not scrubbed")
    (root / "link").symlink_to(root / "a.txt")
    return root


def scrubber(tree: Path, **settings: Any) -> Scrubber:
    defaults = {"directory": "tree", "small_file_limit": 1024, "chunk_size": CHUNK}
    return Scrubber({**defaults, "exclude": ["skipme"], **settings}, base_dir=tree.parent)


@pytest.fixture
def rt() -> Iterator[Runtime]:
    runtime = Runtime(HeartbeatMap("scrub-test"))
    try:
        yield runtime
    finally:
        runtime.stop(5.0)


def processed(rt: Runtime) -> dict[str, int]:
    live = rt.live("scrub")
    assert live is not None
    return {name: q["processed"] for name, q in live.pool.stats()["queues"].items()}


def test_a_pass_hashes_small_files_in_batches_and_large_ones_in_chunks(
    tree: Path, rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    rt.apply(scrub_pools(), 5)
    s = scrubber(tree)
    with caplog.at_level(logging.INFO, "threadpool.scrubber"):
        s._scan(ProducerContext("scrubber", rt), 1)  # returns once the pass is tallied
    assert processed(rt) == {"small": 2, "large": 3, "results": 5}
    assert f"scrub pass 1 of {tree}: 3 files, 0.0 MiB" in caplog.text
    assert "0 changed, 0 unreadable, 0 not queued" in caplog.text
    big = (tree / "big.bin").read_bytes()
    chunks = "".join(
        hashlib.sha256(big[i : i + CHUNK]).hexdigest() for i in range(0, len(big), CHUNK)
    )
    assert s._digests == {
        str(tree / "a.txt"): hashlib.sha256(b"alpha").hexdigest(),
        str(tree / "sub" / "b.txt"): hashlib.sha256(b"beta" * 100).hexdigest(),
        str(tree / "big.bin"): hashlib.sha256(chunks.encode()).hexdigest(),
    }


def test_a_file_changed_between_passes_is_reported(
    tree: Path, rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    rt.apply(scrub_pools(), 5)
    s = scrubber(tree)
    ctx = ProducerContext("scrubber", rt)
    s._scan(ctx, 1)
    (tree / "big.bin").write_bytes(b"\0" * 10240)
    with caplog.at_level(logging.INFO, "threadpool.scrubber"):
        s._scan(ctx, 2)
    assert f"scrub pass 2 of {tree}: 3 files" in caplog.text
    assert f"1 changed ({tree / 'big.bin'}...)" in caplog.text


def test_a_pass_whose_results_cannot_be_queued_is_given_up_and_logged(
    tree: Path, rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    rt.apply(scrub_pools(results=False), 5)
    s = scrubber(tree, pass_timeout=0.2)
    with caplog.at_level(logging.ERROR):
        s._scan(ProducerContext("scrubber", rt), 1)
    assert f"scrub pass 1 of {tree}: gave up after 0.2s with 0 of 3 files done" in caplog.text
    assert "no results queue for" in caplog.text  # the handlers' failures, logged by the pool
    live = rt.live("scrub")
    assert live is not None and live.pool.stats()["queues"]["small"]["failed"] == 2


class WatchedContext(ProducerContext):
    """Says when the producer first waits for room in a queue."""

    def __init__(self, rt: Runtime) -> None:
        super().__init__("scrubber", rt)
        self.waiting = threading.Event()

    def wait(self, seconds: float) -> bool:
        self.waiting.set()
        return super().wait(seconds)


def test_the_producer_keeps_queues_short_instead_of_loading_the_tree(
    tmp_path: Path, rt: Runtime
) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    for i in range(20):
        (root / f"f{i}").write_bytes(b"x")
    rt.apply(scrub_pools(threads=0), 5)  # nothing takes items out
    s = Scrubber({"directory": "tree", "max_queued": 4}, base_dir=tmp_path)
    ctx = WatchedContext(rt)
    producer = threading.Thread(target=s.run, args=(ctx,))
    producer.start()
    try:
        assert ctx.waiting.wait(DEADLINE)
        assert rt.queued("scrub", "small") == 4
    finally:
        ctx._stop.set()
        producer.join(DEADLINE)
    assert not producer.is_alive()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"bogus": 1}, "bogus: unknown setting"),
        ({"directory": 3}, "directory: must be a non-empty string, got 3"),
        ({"directory": "nosuch"}, "is not a directory"),
        ({"exclude": "x"}, "exclude: must be a list of directory names"),
        ({"chunk_size": 10}, "chunk_size: must be an integer >= 4096, got 10"),
        ({"max_queued": True}, "max_queued: must be an integer >= 1, got True"),
        ({"pause": -1}, "pause: must be a number of seconds >= 0, got -1"),
        ({"pool": ""}, "pool: must be a non-empty string"),
    ],
)
def test_bad_settings_are_refused_each_named(
    tmp_path: Path, settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        Scrubber(settings, base_dir=tmp_path)


def test_every_bad_setting_is_listed(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as info:
        Scrubber({"pause": "x", "chunk_size": 1, "zzz": 0}, base_dir=tmp_path)
    assert len(str(info.value).splitlines()) == 3
