"""The service's configuration: ``config.yaml``, read with ``yaml.safe_load`` and checked.

``load(path)`` returns a ``Config`` or raises ``ConfigError`` listing *every*
problem, one a line, as ``config.yaml: pools[1].queues[0].timeout: must be a
number >= 0, got 'abc'``. Unknown keys are problems (with a "did you mean" when
one is close); handlers (``module:function``) are imported and producers built
here, at load time, so that a typo fails the load rather than the first item.
No other exception escapes ``load`` or ``parse``, whatever the document holds.

The document (every section but ``pools`` may be left out; see the shipped
``config.yaml`` for a commented example):

* ``service``: ``listen`` (an IP address, default 127.0.0.1), ``port``
  (default 9464; 0 picks a free one), ``log_level``, ``drain_timeout``
  (seconds to drain at SIGTERM or when a reload removes a queue),
  ``reload_check_interval`` (seconds between looks at the file; 0: SIGHUP only),
  ``scale_interval`` (seconds between elastic-sizing steps).
* ``heartbeat``: ``interval`` (seconds between checks), ``file`` (touched while
  healthy; relative paths are relative to the configuration file).
* ``lockdep``: ``enabled``, ``on_violation`` (raise, log, abort), ``backtrace``,
  ``stats``, ``wait_timeout`` (seconds or null), ``max_classes``.
* ``metrics``: ``lockdep_top_classes`` (how many lock classes, by wait time,
  get per-class series; default 50).
* ``pools``: a list of ``name``, ``thread_name``, either ``threads`` or
  ``min_threads`` + ``max_threads`` (+ ``idle_timeout``), and ``queues``: a list
  of ``name``, ``kind`` (batch, value, workqueue, pointer), ``handler``
  (``module:function`` called as ``process(item, handle)``, or with a list of
  items for ``batch``), ``finish`` (optional ``module:function``, ``finish(item)``),
  ``timeout`` and ``suicide_timeout`` (seconds; 0: none), ``batch_size`` (batch
  only), ``histograms`` (default true).
* ``producers``: a list of ``name``, ``factory`` (``module:callable``, called at
  load time as ``factory(settings, base_dir=<the file's directory>)`` and
  returning an object with ``run(ctx)``; see ``producers.py``) and ``settings``
  (a mapping handed to the factory, which raises ValueError or TypeError for
  bad settings).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .schema import ConfigError, Problems, join, show

__all__ = [
    "Config",
    "ConfigError",
    "HeartbeatConfig",
    "LockdepConfig",
    "PoolConfig",
    "ProducerConfig",
    "QueueConfig",
    "ServiceConfig",
    "load",
    "parse",
]

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
QUEUE_KINDS = ("batch", "value", "workqueue", "pointer")
VIOLATION_RESPONSES = ("raise", "log", "abort")
MAX_THREADS = 1024
DEFAULT_PORT = 9464


@dataclass(frozen=True)
class ServiceConfig:
    listen: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    log_level: str = "info"
    drain_timeout: float = 10.0
    reload_check_interval: float = 2.0
    scale_interval: float = 0.5


@dataclass(frozen=True)
class HeartbeatConfig:
    interval: float = 1.0
    file: str | None = None


@dataclass(frozen=True)
class LockdepConfig:
    enabled: bool = True
    on_violation: str = "log"
    backtrace: bool = False
    stats: bool = False
    wait_timeout: float | None = None
    max_classes: int = 131072

    def kwargs(self) -> dict[str, Any]:
        """The arguments of ``lockdep.configure``."""
        return {
            "enabled": self.enabled,
            "on_violation": self.on_violation,
            "backtrace": self.backtrace,
            "stats": self.stats,
            "wait_timeout": self.wait_timeout,
            "max_classes": self.max_classes,
        }


@dataclass(frozen=True)
class QueueConfig:
    """One work queue. ``process``/``finish_fn`` are the imported callables; two
    configurations compare by their ``module:function`` names."""

    name: str
    kind: str
    handler: str
    finish: str | None = None
    timeout: float = 60.0
    suicide_timeout: float = 0.0
    batch_size: int | None = None
    histograms: bool = True
    process: Callable[..., Any] = field(default=print, compare=False, repr=False)
    finish_fn: Callable[..., Any] | None = field(default=None, compare=False, repr=False)

    def identity(self) -> tuple[str, str, str | None, bool]:
        """What cannot change on a running queue: a change replaces the queue."""
        return (self.kind, self.handler, self.finish, self.histograms)


@dataclass(frozen=True)
class PoolConfig:
    name: str
    thread_name: str | None = None
    threads: int | None = 1
    min_threads: int | None = None
    max_threads: int | None = None
    idle_timeout: float = 30.0
    queues: tuple[QueueConfig, ...] = ()

    @property
    def elastic(self) -> bool:
        return self.min_threads is not None and self.max_threads is not None

    @property
    def initial_threads(self) -> int:
        if self.min_threads is not None:
            return self.min_threads
        return self.threads or 0


@dataclass(frozen=True)
class ProducerConfig:
    """A producer; ``instance`` is what the factory built (not compared)."""

    name: str
    factory: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    instance: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Config:
    source: str
    base_dir: Path
    service: ServiceConfig = ServiceConfig()
    heartbeat: HeartbeatConfig = HeartbeatConfig()
    lockdep: LockdepConfig = LockdepConfig()
    lockdep_top_classes: int = 50
    pools: tuple[PoolConfig, ...] = ()
    producers: tuple[ProducerConfig, ...] = ()


def load(path: str | Path) -> Config:
    """Read and check the file at ``path``; ConfigError for anything wrong with it."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    return parse(data, str(path))


def parse(data: bytes | str, source: str, base_dir: Path | None = None) -> Config:
    """Check a YAML document; ``source`` names it in messages and, unless
    ``base_dir`` is given, its directory is where relative paths start."""
    if base_dir is None:
        base_dir = Path(source).resolve().parent
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        document = yaml.safe_load(text)
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})"]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: not valid YAML: {_yaml_problem(exc)}"]) from None
    except RecursionError:
        raise ConfigError([f"{source}: not usable YAML: nested too deeply"]) from None
    problems = Problems(source)
    try:
        config = _document(problems, document, source, base_dir)
    except RecursionError:  # a self-referencing document in a message, say
        problems.add("", "nested too deeply to check")
        config = None
    problems.raise_if_any()
    assert config is not None
    return config


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is not None and problem:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return " ".join(str(exc).split())


def _document(p: Problems, doc: object, source: str, base_dir: Path) -> Config | None:
    if doc is None:
        p.add("", "the file is empty; it needs at least a 'pools' list")
        return None
    top = p.mapping(
        "",
        doc,
        ("service", "heartbeat", "lockdep", "metrics", "pools", "producers"),
        "a mapping with at least a 'pools' list",
    )
    if top is None:
        return None
    service = _service(p, _section(top, "service", {}))
    heartbeat = _heartbeat(p, _section(top, "heartbeat", {}), base_dir)
    lockdep = _lockdep(p, _section(top, "lockdep", {}))
    metrics = p.mapping("metrics", _section(top, "metrics", {}), ("lockdep_top_classes",)) or {}
    top_classes = p.integer("metrics", metrics, "lockdep_top_classes", 50, minimum=0, maximum=10000)
    pools: list[PoolConfig] = []
    if p.required("", top, "pools"):
        for i, entry in enumerate(p.sequence("pools", top["pools"], "pools")):
            pool = _pool(p, f"pools[{i}]", entry)
            if pool is not None:
                pools.append(pool)
        _unique(p, "pools", [pool.name for pool in pools], "pool")
    producers = []
    for i, entry in enumerate(p.sequence("producers", _section(top, "producers", []), "producers")):
        producer = _producer(p, f"producers[{i}]", entry, base_dir)
        if producer is not None:
            producers.append(producer)
    _unique(p, "producers", [producer.name for producer in producers], "producer")
    return Config(
        source,
        base_dir,
        service,
        heartbeat,
        lockdep,
        _int(top_classes),
        tuple(pools),
        tuple(producers),
    )


def _unique(p: Problems, path: str, names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            p.add(path, f"two {what}s are named {name!r}")
        seen.add(name)


def _service(p: Problems, value: object) -> ServiceConfig:
    known = ("listen", "port", "log_level", "drain_timeout", "reload_check_interval")
    m = p.mapping("service", value, (*known, "scale_interval"))
    if m is None:
        return ServiceConfig()
    d = ServiceConfig()
    listen = p.string("service", m, "listen", d.listen)
    if listen is not None and listen != d.listen:
        try:
            ipaddress.ip_address(listen)
        except ValueError:
            p.add("service.listen", f"must be an IP address like 127.0.0.1 or ::1, got {listen!r}")
    return ServiceConfig(
        listen=listen or d.listen,
        port=_int(p.integer("service", m, "port", d.port, minimum=0, maximum=65535)),
        log_level=p.choice("service", m, "log_level", d.log_level, LOG_LEVELS),
        drain_timeout=_num(p.number("service", m, "drain_timeout", d.drain_timeout, strict=True)),
        reload_check_interval=_num(
            p.number("service", m, "reload_check_interval", d.reload_check_interval)
        ),
        scale_interval=_num(
            p.number("service", m, "scale_interval", d.scale_interval, strict=True)
        ),
    )


def _num(value: float | None) -> float:
    assert value is not None  # every caller gives a default
    return value


def _int(value: int | None) -> int:
    assert value is not None  # every caller gives a default
    return value


def _section(top: Mapping[str, Any], key: str, empty: object) -> object:
    """A section's value; a key with nothing under it (null) counts as left out."""
    value = top.get(key)
    return empty if value is None else value


def _heartbeat(p: Problems, value: object, base_dir: Path) -> HeartbeatConfig:
    m = p.mapping("heartbeat", value, ("interval", "file"))
    if m is None:
        return HeartbeatConfig()
    interval = _num(p.number("heartbeat", m, "interval", 1.0, strict=True))
    path = p.string("heartbeat", m, "file", None, nullable=True)
    return HeartbeatConfig(interval, str(base_dir / path) if path is not None else None)


def _lockdep(p: Problems, value: object) -> LockdepConfig:
    known = ("enabled", "on_violation", "backtrace", "stats", "wait_timeout", "max_classes")
    m = p.mapping("lockdep", value, known)
    if m is None:
        return LockdepConfig()
    d = LockdepConfig()
    return LockdepConfig(
        enabled=p.boolean("lockdep", m, "enabled", d.enabled),
        on_violation=p.choice("lockdep", m, "on_violation", d.on_violation, VIOLATION_RESPONSES),
        backtrace=p.boolean("lockdep", m, "backtrace", d.backtrace),
        stats=p.boolean("lockdep", m, "stats", d.stats),
        wait_timeout=p.number("lockdep", m, "wait_timeout", None, strict=True, nullable=True),
        max_classes=_int(
            p.integer("lockdep", m, "max_classes", d.max_classes, minimum=1, maximum=1 << 24)
        ),
    )


def _pool(p: Problems, path: str, value: object) -> PoolConfig | None:
    known = ("name", "thread_name", "threads", "min_threads", "max_threads", "idle_timeout")
    m = p.mapping(path, value, (*known, "queues"))
    if m is None:
        return None
    have_name = p.required(path, m, "name")
    name = p.name(path, m)
    thread_name = p.string(path, m, "thread_name", None, nullable=True)
    threads = p.integer(path, m, "threads", None, minimum=0, maximum=MAX_THREADS)
    low = p.integer(path, m, "min_threads", None, minimum=0, maximum=MAX_THREADS)
    high = p.integer(path, m, "max_threads", None, minimum=1, maximum=MAX_THREADS)
    idle = _num(p.number(path, m, "idle_timeout", 30.0, strict=True))
    sizes = [key for key in ("threads", "min_threads", "max_threads") if key in m]
    if not sizes:
        p.add(path, "missing required key 'threads' (or 'min_threads' and 'max_threads')")
    elif "threads" in m and len(sizes) > 1:
        p.add(path, "give either 'threads' or 'min_threads' and 'max_threads', not both")
    elif "threads" not in m and len(sizes) == 1:
        missing = "max_threads" if "min_threads" in m else "min_threads"
        p.add(path, f"missing required key {missing!r} (elastic pools need both)")
    elif low is not None and high is not None and low > high:
        p.add(join(path, "min_threads"), f"must be <= max_threads ({high}), got {low}")
    if "idle_timeout" in m and "threads" in m:
        p.add(join(path, "idle_timeout"), "applies only to elastic pools (min_threads/max_threads)")
    queues = []
    if p.required(path, m, "queues"):
        for i, entry in enumerate(p.sequence(join(path, "queues"), m["queues"], "queues")):
            queue = _queue(p, f"{path}.queues[{i}]", entry)
            if queue is not None:
                queues.append(queue)
        _unique(p, join(path, "queues"), [q.name for q in queues], "queue")
    if not have_name or name is None:
        return None
    return PoolConfig(name, thread_name, threads, low, high, idle, tuple(queues))


def _queue(p: Problems, path: str, value: object) -> QueueConfig | None:
    known = ("name", "kind", "handler", "finish", "timeout", "suicide_timeout", "batch_size")
    m = p.mapping(path, value, (*known, "histograms"))
    if m is None:
        return None
    ok = all([p.required(path, m, key) for key in ("name", "kind", "handler")])
    name = p.name(path, m)
    kind = p.choice(path, m, "kind", "", QUEUE_KINDS)
    process = p.callable_at(path, m, "handler")
    finish_fn = p.callable_at(path, m, "finish") if m.get("finish") is not None else None
    timeout = _num(p.number(path, m, "timeout", 60.0))
    suicide = _num(p.number(path, m, "suicide_timeout", 0.0))
    batch_size = p.integer(path, m, "batch_size", None, minimum=1, maximum=1 << 20)
    if "batch_size" in m and kind and kind != "batch":
        p.add(join(path, "batch_size"), f"applies only to kind batch, not {kind}")
    histograms = p.boolean(path, m, "histograms", True)
    if not ok or name is None or not kind or process is None:
        return None
    if kind == "batch" and batch_size is None:
        batch_size = 64
    spec = str(m["handler"])
    finish = str(m["finish"]) if finish_fn is not None else None
    return QueueConfig(
        name, kind, spec, finish, timeout, suicide, batch_size, histograms, process, finish_fn
    )


def _producer(p: Problems, path: str, value: object, base_dir: Path) -> ProducerConfig | None:
    m = p.mapping(path, value, ("name", "factory", "settings"))
    if m is None:
        return None
    ok = all([p.required(path, m, key) for key in ("name", "factory")])
    name = p.name(path, m)
    factory = p.callable_at(path, m, "factory")
    settings = _section(m, "settings", {})
    if not isinstance(settings, Mapping) or any(not isinstance(k, str) for k in settings):
        p.add(join(path, "settings"), f"must be a mapping with names as keys, got {show(settings)}")
        settings = None
    if not ok or name is None or factory is None or settings is None:
        return None
    try:
        instance = factory(dict(settings), base_dir=base_dir)
    except Exception as exc:  # the factory's verdict on its settings
        p.add(join(path, "settings"), str(exc) or type(exc).__name__)
        return None
    if not callable(getattr(instance, "run", None)):
        p.add(join(path, "factory"), f"{m['factory']} returned {instance!r}, which has no run()")
        return None
    return ProducerConfig(name, str(m["factory"]), dict(settings), instance)
