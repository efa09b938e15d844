"""config.py: every key checked, every problem reported at once, with its key path."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from threadpool.service import schema
from threadpool.service.config import (
    MAX_BYTES,
    Config,
    ConfigError,
    QueueConfig,
    fixed_changes,
    load,
    parse,
)
from threadpool.service.example import example_config
from threadpool.service.schema import Items, Key, Section

from .conftest import BASE, HANDLERS, REPO

FULL: dict[str, Any] = {
    "service": {
        "listen": "127.0.0.1",
        "port": 9464,
        "log_level": "info",
        "drain_timeout": 10,
        "reload_check_interval": 2,
        "scale_interval": 0.5,
    },
    "heartbeat": {"interval": 1, "file": "hb"},
    "lockdep": {
        "enabled": True,
        "on_violation": "log",
        "backtrace": False,
        "stats": True,
        "wait_timeout": None,
        "max_classes": 1000,
    },
    "metrics": {"lockdep_top_classes": 50},
    "pools": [
        {
            "name": "main",
            "thread_name": "tp_main",
            "threads": 2,
            "queues": [
                {
                    "name": "q",
                    "kind": "batch",
                    "handler": f"{HANDLERS}:noop",
                    "finish": f"{HANDLERS}:collect",
                    "timeout": 5,
                    "suicide_timeout": 50,
                    "batch_size": 8,
                    "histograms": False,
                }
            ],
        }
    ],
    "producers": [
        {
            "name": "t",
            "factory": f"{HANDLERS}:Ticker",
            "settings": {"pool": "main", "queue": "q"},
        }
    ],
}


def check(document: Any, source: str = "config.yaml") -> Config:
    text = document if isinstance(document, str) else yaml.safe_dump(document)
    return parse(text, source, Path("/base"))


def problems(document: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        check(document)
    return info.value.problems


def with_value(path: str, value: Any) -> dict[str, Any]:
    """FULL with the key at ``path`` (like ``pools[0].queues[0].timeout``) set to value."""
    doc = copy.deepcopy(FULL)
    node: Any = doc
    parts = path.replace("[", ".").replace("]", "").split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    last = parts[-1]
    node[int(last) if last.isdigit() else last] = value
    return doc


def without(path: str) -> dict[str, Any]:
    doc = copy.deepcopy(FULL)
    node: Any = doc
    parts = path.replace("[", ".").replace("]", "").split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    del node[parts[-1]]
    return doc


def test_full_configuration_reads_every_key() -> None:
    config = check(FULL)
    assert config.service.port == 9464 and config.service.scale_interval == 0.5
    assert config.heartbeat.file == "/base/hb"  # relative to the file's directory
    assert config.lockdep.kwargs() == {
        "enabled": True,
        "on_violation": "log",
        "backtrace": False,
        "stats": True,
        "wait_timeout": None,
        "max_classes": 1000,
    }
    assert config.metrics.lockdep_top_classes == 50
    (pool,) = config.pools
    assert (pool.name, pool.thread_name, pool.threads, pool.elastic) == (
        "main",
        "tp_main",
        2,
        False,
    )
    (queue,) = pool.queues
    assert (queue.kind, queue.timeout, queue.suicide_timeout, queue.batch_size) == (
        "batch",
        5.0,
        50.0,
        8,
    )
    from tests.service import handlers

    assert queue.process is handlers.noop and queue.finish_fn is handlers.collect
    assert queue.histograms is False
    (producer,) = config.producers
    assert isinstance(producer.instance, handlers.Ticker)


def test_defaults_fill_what_is_left_out() -> None:
    config = check(BASE | {"service": None, "heartbeat": None})
    assert config.service.listen == "127.0.0.1" and config.service.port == 9464
    assert config.service.log_level == "info" and config.heartbeat.interval == 1.0
    assert config.lockdep.on_violation == "log"  # a service logs rather than raising in workers
    assert config.metrics.lockdep_top_classes == 50 and config.producers == ()
    (queue,) = config.pools[0].queues
    assert queue.histograms is True and queue.timeout == 60.0 and queue.suicide_timeout == 0.0


def test_batch_queue_defaults_to_batches_of_64() -> None:
    doc = with_value("pools[0].queues[0].batch_size", 64)
    del doc["pools"][0]["queues"][0]["batch_size"]
    assert check(doc).pools[0].queues[0].batch_size == 64


def test_elastic_pool_reads_min_max_and_idle_timeout() -> None:
    doc = copy.deepcopy(FULL)
    pool = doc["pools"][0]
    del pool["threads"]
    pool.update(min_threads=1, max_threads=4, idle_timeout=3)
    (pc,) = check(doc).pools
    assert pc.elastic and (pc.min_threads, pc.max_threads, pc.idle_timeout) == (1, 4, 3.0)
    assert pc.initial_threads == 1


def test_shipped_config_yaml_is_valid() -> None:
    config = load(REPO / "config.yaml")
    assert config.pools and config.producers
    assert config.service.listen == "127.0.0.1"


def test_message_names_file_key_path_and_value() -> None:
    (problem,) = problems(with_value("pools[0].queues[0].timeout", "abc"))
    assert problem == "config.yaml: pools[0].queues[0].timeout: must be a number >= 0, got 'abc'"


WRONG = [
    ("service.listen", 5, "service.listen: must be a non-empty string, got 5"),
    ("service.listen", "localhost", "service.listen: must be an IP address"),
    ("service.port", "80", "service.port: must be an integer 0..65535, got '80'"),
    ("service.port", 70000, "service.port: must be an integer 0..65535, got 70000"),
    ("service.log_level", "loud", "service.log_level: must be one of debug, info, warning"),
    ("service.log_level", 3, "service.log_level: must be one of"),
    ("service.drain_timeout", 0, "service.drain_timeout: must be a number > 0, got 0"),
    ("service.drain_timeout", "abc", "service.drain_timeout: must be a number > 0, got 'abc'"),
    ("service.reload_check_interval", -1, "reload_check_interval: must be a number >= 0, got -1"),
    ("service.reload_check_interval", True, "must be a number >= 0, got true"),
    ("service.scale_interval", 0, "service.scale_interval: must be a number > 0"),
    ("heartbeat.interval", "abc", "heartbeat.interval: must be a number > 0, got 'abc'"),
    ("heartbeat.interval", float("inf"), "heartbeat.interval: must be a number > 0, got inf"),
    ("heartbeat.file", 3, "heartbeat.file: must be a non-empty string or null, got 3"),
    ("lockdep.enabled", "yes", "lockdep.enabled: must be true or false, got 'yes'"),
    ("lockdep.on_violation", "explode", "lockdep.on_violation: must be one of raise, log, abort"),
    ("lockdep.backtrace", 1, "lockdep.backtrace: must be true or false, got 1"),
    ("lockdep.stats", "on", "lockdep.stats: must be true or false"),
    ("lockdep.wait_timeout", 0, "lockdep.wait_timeout: must be a number > 0 or null, got 0"),
    ("lockdep.max_classes", 0, "lockdep.max_classes: must be an integer 1.."),
    ("metrics.lockdep_top_classes", -1, "metrics.lockdep_top_classes: must be an integer 0.."),
    ("metrics", [1], "metrics: must be a mapping, got [1]"),
    ("pools", {"name": "x"}, "pools: must be a list of pools, got {'name': 'x'}"),
    ("pools[0]", "x", "pools[0]: must be a mapping, got 'x'"),
    ("pools[0].name", "bad name", "pools[0].name: must be a string of 1 to 64 characters"),
    ("pools[0].thread_name", 5, "pools[0].thread_name: must be a non-empty string or null"),
    ("pools[0].threads", -1, "pools[0].threads: must be an integer 0..1024, got -1"),
    ("pools[0].threads", "2", "pools[0].threads: must be an integer 0..1024, got '2'"),
    ("pools[0].threads", 2.5, "pools[0].threads: must be an integer 0..1024, got 2.5"),
    ("pools[0].queues", "q", "pools[0].queues: must be a list of queues, got 'q'"),
    ("pools[0].queues[0]", None, "pools[0].queues[0]: must be a mapping, got null"),
    ("pools[0].queues[0].name", "", "pools[0].queues[0].name: must be a string of"),
    ("pools[0].queues[0].kind", "fifo", "queues[0].kind: must be one of batch, value, workqueue"),
    ("pools[0].queues[0].handler", "noop", "queues[0].handler: must be 'module:function'"),
    ("pools[0].queues[0].handler", 7, "queues[0].handler: must be a non-empty string, got 7"),
    (
        "pools[0].queues[0].handler",
        "tests.service.nosuch:f",
        "queues[0].handler: cannot import module 'tests.service.nosuch': ModuleNotFoundError",
    ),
    (
        "pools[0].queues[0].handler",
        f"{HANDLERS}:nosuch",
        f"queues[0].handler: module '{HANDLERS}' has no attribute 'nosuch'",
    ),
    (
        "pools[0].queues[0].handler",
        f"{HANDLERS}:NOT_CALLABLE",
        f"queues[0].handler: {HANDLERS}:NOT_CALLABLE is not callable (it is a int)",
    ),
    ("pools[0].queues[0].finish", f"{HANDLERS}:gone", "queues[0].finish: module"),
    ("pools[0].queues[0].timeout", -1, "queues[0].timeout: must be a number >= 0, got -1"),
    ("pools[0].queues[0].timeout", float("nan"), "queues[0].timeout: must be a number >= 0"),
    ("pools[0].queues[0].suicide_timeout", "x", "queues[0].suicide_timeout: must be a number"),
    ("pools[0].queues[0].batch_size", 0, "queues[0].batch_size: must be an integer 1.."),
    ("pools[0].queues[0].histograms", "no", "queues[0].histograms: must be true or false"),
    ("producers", "x", "producers: must be a list of producers, got 'x'"),
    ("producers[0].name", 7, "producers[0].name: must be a string of 1 to 64"),
    (
        "producers[0].factory",
        f"{HANDLERS}:no_run",
        f"producers[0].factory: {HANDLERS}:no_run returned <object object at",
    ),
    ("producers[0].factory", "x", "producers[0].factory: must be 'module:function'"),
    ("producers[0].settings", [1], "producers[0].settings: must be a mapping with names as keys"),
    ("producers[0].settings", {"bogus": 1}, "producers[0].settings: unknown settings: bogus"),
]


@pytest.mark.parametrize(
    ("path", "value", "message"), WRONG, ids=[f"{p}={v!r}" for p, v, _ in WRONG]
)
def test_wrong_value_is_reported_with_its_key_path(path: str, value: Any, message: str) -> None:
    found = problems(with_value(path, value))
    assert len(found) == 1, found
    assert found[0].startswith("config.yaml: ") and message in found[0], found


MISSING = [
    ("pools", "config.yaml: missing required key 'pools'"),
    ("pools[0].name", "pools[0]: missing required key 'name'"),
    ("pools[0].threads", "pools[0]: missing required key 'threads' (or 'min_threads' and"),
    ("pools[0].queues", "pools[0]: missing required key 'queues'"),
    ("pools[0].queues[0].name", "pools[0].queues[0]: missing required key 'name'"),
    ("pools[0].queues[0].kind", "pools[0].queues[0]: missing required key 'kind'"),
    ("pools[0].queues[0].handler", "pools[0].queues[0]: missing required key 'handler'"),
    ("producers[0].name", "producers[0]: missing required key 'name'"),
    ("producers[0].factory", "producers[0]: missing required key 'factory'"),
]


@pytest.mark.parametrize(("path", "message"), MISSING, ids=[p for p, _ in MISSING])
def test_missing_required_key_is_reported(path: str, message: str) -> None:
    found = problems(without(path))
    assert any(message in p for p in found), found


UNKNOWN = [
    ("pool", "", "config.yaml: pool: unknown key; did you mean 'pools'?"),
    ("prot", "service", "service.prot: unknown key; did you mean 'port'?"),
    ("stat", "lockdep", "lockdep.stat: unknown key; did you mean 'stats'?"),
    ("thread", "pools[0]", "pools[0].thread: unknown key; did you mean 'threads'?"),
    ("timout", "pools[0].queues[0]", "pools[0].queues[0].timout: unknown key; did you mean"),
    ("setting", "producers[0]", "producers[0].setting: unknown key; did you mean 'settings'?"),
    ("intervall", "heartbeat", "heartbeat.intervall: unknown key; did you mean 'interval'?"),
]


@pytest.mark.parametrize(("key", "where", "message"), UNKNOWN, ids=[k for k, _, _ in UNKNOWN])
def test_unknown_key_is_reported_with_a_suggestion(key: str, where: str, message: str) -> None:
    doc = copy.deepcopy(FULL)
    node: Any = doc
    for part in where.replace("[", ".").replace("]", "").split(".") if where else []:
        node = node[int(part)] if part.isdigit() else node[part]
    node[key] = 1
    found = problems(doc)
    assert any(message in p for p in found), found


def test_unknown_key_far_from_any_gets_no_suggestion() -> None:
    (problem,) = problems(with_value("service.zzzzzz", 1))
    assert "unknown key (known: listen, port" in problem and "did you mean" not in problem


def test_non_string_key_is_reported() -> None:
    (problem,) = problems(with_value("service", {1: 2}))
    assert "service: unknown key 1" in problem


def test_every_problem_is_reported_at_once() -> None:
    doc = with_value("service.port", "x")
    doc["lockdep"]["on_violation"] = "never"
    doc["pools"][0]["queues"][0]["timeout"] = "abc"
    doc["pools"][0]["queues"][0]["handler"] = "tests.service.nosuch:f"
    doc["pools"][0]["threads"] = -3
    found = problems(doc)
    assert len(found) == 5, found
    for fragment in (
        "service.port",
        "lockdep.on_violation",
        "pools[0].queues[0].timeout",
        "pools[0].queues[0].handler",
        "pools[0].threads",
    ):
        assert any(fragment in p for p in found), (fragment, found)
    with pytest.raises(ConfigError) as info:
        check(doc)
    assert str(info.value) == "\n".join(found)


SIZES = [
    ({"threads": 2, "min_threads": 1}, "give either 'threads' or 'min_threads' and"),
    ({"min_threads": 1}, "missing required key 'max_threads' (elastic pools need both)"),
    ({"max_threads": 3}, "missing required key 'min_threads'"),
    ({"min_threads": 4, "max_threads": 2}, "pools[0].min_threads: must be <= max_threads (2)"),
    ({"threads": 2, "idle_timeout": 5}, "idle_timeout: applies only to elastic pools"),
    ({"min_threads": 0, "max_threads": 0}, "pools[0].max_threads: must be an integer 1..1024"),
]


@pytest.mark.parametrize(("sizes", "message"), SIZES, ids=[m for _, m in SIZES])
def test_pool_size_combinations_are_checked(sizes: dict[str, int], message: str) -> None:
    doc = copy.deepcopy(FULL)
    del doc["pools"][0]["threads"]
    doc["pools"][0].update(sizes)
    found = problems(doc)
    assert any(message in p for p in found), found


def test_batch_size_on_another_kind_is_an_error() -> None:
    doc = with_value("pools[0].queues[0].kind", "pointer")
    (problem,) = problems(doc)
    assert "pools[0].queues[0].batch_size: applies only to kind batch, not pointer" in problem


def test_duplicate_names_are_errors() -> None:
    doc = copy.deepcopy(FULL)
    doc["pools"].append(copy.deepcopy(doc["pools"][0]))
    doc["pools"][0]["queues"].append(copy.deepcopy(doc["pools"][0]["queues"][0]))
    doc["producers"].append(copy.deepcopy(doc["producers"][0]))
    found = problems(doc)
    assert "config.yaml: pools: two pools are named 'main'" in found
    assert "config.yaml: pools[0].queues: two queues are named 'q'" in found
    assert "config.yaml: producers: two producers are named 't'" in found


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "config.yaml: the file is empty; it needs at least a 'pools' list"),
        ("pools: [", "config.yaml: not valid YAML: line 1, column 9: expected the node content"),
        ("- 1\n- 2\n", "config.yaml: must be a mapping with at least a 'pools' list, got [1, 2]"),
        ("pools: !!python/object:os.system {}", "config.yaml: not valid YAML:"),
        ("[" * 20000, "config.yaml: not"),
        ("a: &a [*a]\npools: []", "config.yaml: a: unknown key"),
    ],
    ids=["empty", "syntax", "list", "python-tag", "deep", "self-reference"],
)
def test_unusable_document_is_a_config_error(text: str, message: str) -> None:
    found = problems(text)
    assert found[0].startswith(message), found


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"pools: [\xff]\n")
    with pytest.raises(ConfigError, match=r"config.yaml: not UTF-8 text"):
        load(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nosuch.yaml: cannot read: No such file"):
        load(tmp_path / "nosuch.yaml")


def test_handler_module_that_raises_on_import_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "explodes_on_import.py").write_text("raise RuntimeError('boom at import')\n")
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        (problem,) = problems(with_value("pools[0].queues[0].handler", "explodes_on_import:f"))
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("explodes_on_import", None)
    assert "cannot import module 'explodes_on_import': RuntimeError: boom at import" in problem


# --- property: any document gives a Config or a ConfigError ------------------------------------

KEYS = sorted(
    {
        *FULL,
        *FULL["service"],
        *FULL["lockdep"],
        *FULL["heartbeat"],
        *FULL["pools"][0],
        *FULL["pools"][0]["queues"][0],
        *FULL["producers"][0],
        "min_threads",
        "max_threads",
        "idle_timeout",
        "lockdep_top_classes",
    }
)
SPECS = [f"{HANDLERS}:noop", f"{HANDLERS}:Ticker", f"{HANDLERS}:no_run", "x:y", "nosuch.mod:f"]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from([*SPECS, "batch", "value", "pointer", "log", "127.0.0.1", "::1"])
)
keys = st.sampled_from(KEYS) | st.text(max_size=8) | st.integers(-3, 3)
documents = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=6),
    max_leaves=30,
)


def _mutate(doc: Any, path: list[Any], value: Any) -> Any:
    """FULL with the node reached by following ``path`` (indices taken modulo) set to value."""
    doc = copy.deepcopy(doc)
    node = doc
    for step in path[:-1]:
        if isinstance(node, dict) and node:
            node = node[sorted(node, key=str)[step % len(node)]]
        elif isinstance(node, list) and node:
            node = node[step % len(node)]
    if isinstance(node, dict):
        keys_ = sorted(node, key=str)
        key = keys_[path[-1] % len(keys_)] if keys_ and path[-1] >= 0 else f"k{path[-1]}"
        node[key] = value
    elif isinstance(node, list) and node:
        node[path[-1] % len(node)] = value
    return doc


def _parses_or_config_error(text: str) -> None:
    try:
        config = parse(text, "config.yaml", Path("/base"))
    except ConfigError as exc:
        assert exc.problems and all(p.startswith("config.yaml: ") for p in exc.problems)
    else:
        assert isinstance(config, Config)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_any_text_gives_config_or_config_error(text: str) -> None:
    _parses_or_config_error(text)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_any_yaml_document_gives_config_or_config_error(document: Any) -> None:
    _parses_or_config_error(yaml.safe_dump(document))


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(-2, 40), min_size=1, max_size=5), documents)
def test_any_change_to_a_valid_document_gives_config_or_config_error(
    path: list[int], value: Any
) -> None:
    _parses_or_config_error(yaml.safe_dump(_mutate(FULL, path, value)))


# --- one schema: validation, defaults, the shipped file's comments ------------------------------


def schema_keys(cls: type, path: str = "") -> list[tuple[str, Key, Any]]:
    out = []
    for name, k, default in schema.keys(cls):
        where = f"{path}.{name}" if path else name
        out.append((where, k, default))
        if isinstance(k.check, (Section, Items)):
            out += schema_keys(k.check.cls, where)
    return out


def test_shipped_config_yaml_is_rendered_from_the_schema() -> None:
    assert (REPO / "config.yaml").read_text() == example_config(), (
        "config.yaml is out of date: python -m threadpool example-config > config.yaml"
    )


def test_shipped_config_yaml_documents_every_key_with_its_sentence() -> None:
    text = (REPO / "config.yaml").read_text()
    for path, k, _default in schema_keys(Config):
        assert k.doc, f"{path} has no documentation"
        leaf = path.rsplit(".", 1)[-1]
        assert f"{leaf}:" in text, f"{path} is not in config.yaml"
        assert " ".join(k.doc.split()[:4]) in " ".join(text.replace("#", " ").split()), path


def test_left_out_keys_take_the_schema_defaults() -> None:
    config = check({"pools": [{"name": "p", "threads": 1, "queues": [FULL_QUEUE_MINIMUM]}]})
    for section in ("service", "heartbeat", "lockdep", "metrics"):
        cls = type(getattr(config, section))
        for name, _k, default in schema.keys(cls):
            assert getattr(getattr(config, section), name) == default, (section, name)
    (queue,) = config.pools[0].queues
    for name, k, default in schema.keys(QueueConfig):
        if not k.required:
            assert getattr(queue, name) == default, name


FULL_QUEUE_MINIMUM = {"name": "q", "kind": "value", "handler": f"{HANDLERS}:noop"}


def test_keys_a_reload_may_not_change_are_declared_in_the_schema() -> None:
    fixed = [path for path, k, _default in schema_keys(Config) if k.fixed]
    assert fixed == ["service.listen", "service.port", "lockdep.instrument"]
    old = check(FULL)
    new = check(with_value("lockdep.instrument", True))
    assert fixed_changes(old, new) == [
        "lockdep.instrument: cannot change on reload (restart the service); it is False"
    ]
    assert fixed_changes(old, check(FULL)) == []


def test_a_queue_is_replaced_when_a_key_marked_replaces_changes() -> None:
    replaced = {name for name, k, _default in schema.keys(QueueConfig) if k.replaces}
    assert replaced == {"kind", "handler", "finish", "histograms"}
    base = check(FULL).pools[0].queues[0]
    assert check(with_value("pools[0].queues[0].timeout", 9)).pools[0].queues[0].identity() == (
        base.identity()
    )
    other = check(with_value("pools[0].queues[0].handler", f"{HANDLERS}:fail"))
    assert other.pools[0].queues[0].identity() != base.identity()


def test_lockdep_section_gives_configure_every_key_but_instrument() -> None:
    import inspect

    import lockdep

    config = check(with_value("lockdep.instrument", True))
    assert config.lockdep.instrument is True
    assert set(config.lockdep.kwargs()) | {"fast_path"} == set(
        inspect.signature(lockdep.configure).parameters
    )
    assert check(with_value("lockdep.fast_path", "python")).lockdep.kwargs()["fast_path"] == (
        "python"
    )


def test_before_imports_runs_after_the_checks_and_before_any_handler_is_imported(
    tmp_path: Path,
) -> None:
    import sys

    (tmp_path / "imported_late.py").write_text("def f(item, handle): pass\n")
    sys.path.insert(0, str(tmp_path))
    seen: list[bool] = []
    try:
        config = check_with_hook(
            with_value("pools[0].queues[0].handler", "imported_late:f"),
            lambda c: seen.append("imported_late" in sys.modules),
        )
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("imported_late", None)
    assert seen == [False]
    assert config.pools[0].queues[0].process.__module__ == "imported_late"


def check_with_hook(document: Any, hook: Any) -> Config:
    return parse(yaml.safe_dump(document), "config.yaml", Path("/base"), before_imports=hook)


# --- the file: its size and kind are checked before it is read ------------------------------


def test_a_file_over_the_size_limit_is_refused_without_being_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(FULL))
    with open(path, "r+b") as f:
        f.truncate(50 * 2**20)  # sparse: 50 MB that cost nothing to make

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the file was parsed")

    monkeypatch.setattr(yaml, "safe_load", refuse)
    with pytest.raises(ConfigError) as info:
        load(path)
    assert info.value.problems == [
        f"{path}: 52,428,800 bytes, over the limit of 262,144 (256 KiB) for a configuration "
        "file: is it the right file?"
    ]


def test_a_file_at_the_size_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    text = yaml.safe_dump(FULL)
    path.write_text(text + "#" * (MAX_BYTES - len(text.encode()) - 1) + "\n")
    assert path.stat().st_size == MAX_BYTES
    assert load(path).pools[0].name == "main"


def test_a_fifo_is_refused_instead_of_blocking(tmp_path: Path) -> None:
    import os

    path = tmp_path / "config.yaml"
    os.mkfifo(path)
    with pytest.raises(ConfigError, match=r"config.yaml: not a regular file"):
        load(path)
