"""The service's configuration: ``config.yaml``, read with ``yaml.safe_load`` and checked.

The sections below are the schema, each key declared once (``schema.key``):
its check, default and documentation. Validation, defaults, the messages'
lists of known keys, what a reload may not change and the comments of the
shipped ``config.yaml`` (``example.py`` renders it) all follow from them. To
add a key, add one field to its section; use it where it takes effect.

``load(path)`` returns a ``Config`` or raises ``ConfigError`` listing *every*
problem, one a line, as ``config.yaml: pools[1].queues[0].timeout: must be a
number >= 0, got 'abc'``. Unknown keys are problems (with a "did you mean" when
one is close). Handlers and factories (``module:function``) are imported, and
producers built, at load time, so that a typo fails the load rather than the
first item. No other exception escapes ``load`` or ``parse``, whatever the
document holds. A file over ``MAX_BYTES`` (256 KiB), or that is not a regular
file, is refused before it is read.

The configuration is code: loading it imports the modules it names and calls
the factories, and ``threadpool check`` does too. The file must be as trusted,
and as protected, as the code itself: writable only by whoever may change
what the service runs.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import lockdep

from .checks import (
    NAME,
    Address,
    Boolean,
    Choice,
    FilePath,
    Function,
    Integer,
    Number,
    Ref,
    Settings,
    String,
)
from .schema import (
    ConfigError,
    Items,
    Reader,
    Section,
    fixed_keys,
    join,
    key,
    read_document,
    values,
)

__all__ = [
    "Config",
    "ConfigError",
    "HeartbeatConfig",
    "LockdepConfig",
    "MetricsConfig",
    "PoolConfig",
    "ProducerConfig",
    "QueueConfig",
    "ServiceConfig",
    "fixed_changes",
    "load",
    "parse",
    "read_file",
    "unsafe_permissions",
]

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
QUEUE_KINDS = ("batch", "value", "workqueue", "pointer")
VIOLATION_RESPONSES = lockdep.RESPONSES
FAST_PATHS = ("auto", "c", "python")
MAX_THREADS = 1024
MAX_BYTES = 256 * 1024  # a configuration file's size limit: about 2 s of parsing at most
BATCH_SIZE = 64  # a batch queue's batch_size when none is given


@dataclass(frozen=True, kw_only=True)
class ServiceConfig:
    listen: str = key(
        Address(),
        "127.0.0.1",
        fixed=True,
        doc="an IP address; 0.0.0.0 or :: to serve every interface",
    )
    port: int = key(
        Integer(0, 65535),
        9464,
        fixed=True,
        doc="/metrics, /health and /lockdep; 0 picks a free port (logged)",
    )
    log_level: str = key(Choice(LOG_LEVELS), "info", doc=", ".join(LOG_LEVELS))
    drain_timeout: float = key(
        Number(strict=True),
        10.0,
        doc="seconds to finish queued work at SIGTERM, or in a removed queue",
    )
    reload_check_interval: float = key(
        Number(), 2.0, doc="seconds between looks at this file; 0: reload on SIGHUP only"
    )
    scale_interval: float = key(
        Number(strict=True), 0.5, doc="seconds between sizing steps of elastic pools"
    )


@dataclass(frozen=True, kw_only=True)
class HeartbeatConfig:
    interval: float = key(
        Number(strict=True), 1.0, doc="seconds between health checks of every worker"
    )
    file: str | None = key(
        FilePath(),
        None,
        doc="touched after each healthy check (relative: to this file); a symlink is refused",
    )


@dataclass(frozen=True, kw_only=True)
class LockdepConfig:
    instrument: bool = key(
        Boolean(),
        False,
        fixed=True,
        doc="also validate the threading locks of handlers and producers (SPEC 3.7)",
    )
    enabled: bool = key(Boolean(), True, doc="false: lockdep's locks cost almost nothing")
    on_violation: str = key(
        Choice(VIOLATION_RESPONSES),
        "log",
        doc="log (each distinct violation once), raise, or abort",
    )
    backtrace: bool = key(
        Boolean(), False, doc="a full stack with every acquisition: slower, clearer reports"
    )
    stats: bool = key(Boolean(), False, doc="per-class wait/hold statistics, exported")
    wait_timeout: float | None = key(
        Number(strict=True, nullable=True),
        None,
        doc="seconds: report an acquisition blocked longer than this",
    )
    max_classes: int = key(
        Integer(1, 1 << 24), 131072, doc="lock classes; past it lockdep reports once and stops"
    )
    fast_path: str = key(
        Choice(FAST_PATHS),
        "auto",
        doc="validated acquisitions in C or in Python; auto: C where it was built",
    )

    def kwargs(self) -> dict[str, Any]:
        """The arguments of ``lockdep.configure`` (every key but ``instrument``; no
        ``fast_path`` for auto)."""
        settings = values(self)
        del settings["instrument"]
        if settings["fast_path"] == "auto":
            del settings["fast_path"]
        return settings


@dataclass(frozen=True, kw_only=True)
class MetricsConfig:
    lockdep_top_classes: int = key(
        Integer(0, 10000), 50, doc="lock classes, by wait time, exported with their own series"
    )


@dataclass(frozen=True, kw_only=True)
class QueueConfig:
    """One work queue. Changing a key marked ``replaces`` replaces the running queue;
    the others are changed on it."""

    name: str = key(NAME, doc="the queue's name (label queue)")
    kind: str = key(
        Choice(QUEUE_KINDS),
        replaces=True,
        doc="batch (process gets a list), value, workqueue or pointer (one item)",
    )
    handler: Ref = key(
        Function(),
        replaces=True,
        doc="module:function, called as process(item, handle) on a worker",
    )
    finish: Ref | None = key(
        Function(nullable=True),
        None,
        replaces=True,
        doc="module:function, called as finish(item) under the pool lock",
    )
    timeout: float = key(
        Number(), 60.0, doc="seconds an item may take before /health says 503; 0: none"
    )
    suicide_timeout: float = key(
        Number(), 0.0, doc="seconds after which the process aborts, to be restarted; 0: none"
    )
    batch_size: int | None = key(
        Integer(1, 1 << 20), None, doc=f"items per batch (batch queues only; default {BATCH_SIZE})"
    )
    histograms: bool = key(
        Boolean(),
        True,
        replaces=True,
        doc="duration and queue-wait histograms (a third of a no-op item's cost)",
    )

    @property
    def process(self) -> Callable[..., Any]:
        """The imported handler."""
        assert self.handler.target is not None, "the configuration was not fully loaded"
        return self.handler.target

    @property
    def finish_fn(self) -> Callable[..., Any] | None:
        return self.finish.target if self.finish is not None else None

    def identity(self) -> tuple[Any, ...]:
        """What cannot change on a running queue: a change replaces the queue."""
        return tuple(values(self, which=lambda k: k.replaces).values())

    def check(self, r: Reader, path: str, m: Mapping[str, Any]) -> QueueConfig:
        if "batch_size" in m and self.kind != "batch":
            r.add(join(path, "batch_size"), f"applies only to kind batch, not {self.kind}")
        if self.kind == "batch" and self.batch_size is None:
            return dataclasses.replace(self, batch_size=BATCH_SIZE)
        return self


@dataclass(frozen=True, kw_only=True)
class PoolConfig:
    name: str = key(NAME, doc="the pool's name (label pool)")
    thread_name: str | None = key(
        String(nullable=True), None, doc="its workers' OS thread name (default: the pool's name)"
    )
    threads: int | None = key(
        Integer(0, MAX_THREADS), None, doc="a fixed size; or min_threads and max_threads"
    )
    min_threads: int | None = key(
        Integer(0, MAX_THREADS), None, doc="elastic: grows while items wait and all are busy"
    )
    max_threads: int | None = key(Integer(1, MAX_THREADS), None, doc="elastic: never above this")
    idle_timeout: float = key(
        Number(strict=True), 30.0, doc="elastic: seconds idle before a thread is given back"
    )
    queues: tuple[QueueConfig, ...] = key(
        Items(QueueConfig, "queue"), doc="the queues its workers serve, round-robin"
    )

    @property
    def elastic(self) -> bool:
        return self.min_threads is not None and self.max_threads is not None

    @property
    def initial_threads(self) -> int:
        if self.min_threads is not None:
            return self.min_threads
        return self.threads or 0

    def check(self, r: Reader, path: str, m: Mapping[str, Any]) -> PoolConfig:
        sizes = [name for name in ("threads", "min_threads", "max_threads") if name in m]
        low, high = self.min_threads, self.max_threads
        if not sizes:
            r.add(path, "missing required key 'threads' (or 'min_threads' and 'max_threads')")
        elif "threads" in m and len(sizes) > 1:
            r.add(path, "give either 'threads' or 'min_threads' and 'max_threads', not both")
        elif "threads" not in m and len(sizes) == 1:
            missing = "max_threads" if "min_threads" in m else "min_threads"
            r.add(path, f"missing required key {missing!r} (elastic pools need both)")
        elif low is not None and high is not None and low > high:
            r.add(join(path, "min_threads"), f"must be <= max_threads ({high}), got {low}")
        if "idle_timeout" in m and "threads" in m:
            r.add(
                join(path, "idle_timeout"),
                "applies only to elastic pools (min_threads/max_threads)",
            )
        return self


@dataclass(frozen=True, kw_only=True)
class ProducerConfig:
    """A producer; ``instance`` is what the factory built (filled in at load, once the
    factory is imported; not compared)."""

    name: str = key(NAME, doc="the producer's name (its thread: producer <name>)")
    factory: Ref = key(
        Function(), doc="module:callable, called at load as factory(settings, base_dir=...)"
    )
    settings: dict[str, Any] = key(Settings(), {}, doc="handed to the factory")
    instance: Any = dataclasses.field(default=None, compare=False, repr=False)

    def check(self, r: Reader, path: str, m: Mapping[str, Any]) -> ProducerConfig:
        r.defer(lambda: self._build(r, path))
        return self

    def _build(self, r: Reader, path: str) -> None:
        factory = self.factory.target
        if factory is None:
            return  # its import failed: reported
        try:
            instance = factory(dict(self.settings), base_dir=r.base_dir)
        except Exception as exc:  # the factory's verdict on its settings
            r.add(join(path, "settings"), str(exc) or type(exc).__name__)
            return
        if not callable(getattr(instance, "run", None)):
            r.add(
                join(path, "factory"), f"{self.factory} returned {instance!r}, which has no run()"
            )
            return
        object.__setattr__(self, "instance", instance)  # frozen: set once, here


@dataclass(frozen=True, kw_only=True)
class Config:
    service: ServiceConfig = key(
        Section(ServiceConfig),
        ServiceConfig(),
        doc="The process: the address of /metrics, /health and /lockdep, the log level, how "
        "long to drain, how often to look at this file.",
    )
    heartbeat: HeartbeatConfig = key(
        Section(HeartbeatConfig),
        HeartbeatConfig(),
        doc="Every worker's heartbeat: a worker past its queue's timeout makes /health answer "
        "503 (and systemd's watchdog go unfed); past its suicide_timeout the process aborts, "
        "for its supervisor to restart it.",
    )
    lockdep: LockdepConfig = key(
        Section(LockdepConfig),
        LockdepConfig(),
        doc="lockdep validates the order of every lock the pools take (SPEC 3) and, with "
        "instrument, the threading locks of the handlers and producers too. /lockdep shows "
        "the graph and the violations; lockdep_violations_total counts them.",
    )
    metrics: MetricsConfig = key(
        Section(MetricsConfig),
        MetricsConfig(),
        doc="What /metrics exports beyond the pools' and lockdep's counters.",
    )
    pools: tuple[PoolConfig, ...] = key(
        Items(PoolConfig, "pool"),
        doc="Pools of worker threads and the queues they serve, round-robin. threads is a "
        "fixed size; min_threads and max_threads make a pool elastic. Handlers are imported "
        "at load time: this is code (see the top of this file).",
    )
    producers: tuple[ProducerConfig, ...] = key(
        Items(ProducerConfig, "producer"),
        (),
        doc="Producers feed the queues, each on its own thread, for the life of the service: "
        "factory(settings, base_dir=...) is called at load time and returns an object whose "
        "run(ctx) queues items with ctx.submit(pool, queue, item) until ctx.stopping "
        "(threadpool/service/producers.py). The default workload keeps checksumming the "
        "files of this directory; replace it with your own.",
    )
    source: str = ""  # the file's name, as given
    base_dir: Path = Path(".")  # where relative paths start: the file's directory

    def check(self, r: Reader, path: str, m: Mapping[str, Any]) -> Config:
        return dataclasses.replace(self, source=r.source, base_dir=r.base_dir)


def fixed_changes(old: Config, new: Config) -> list[str]:
    """The key paths whose value differs between ``old`` and ``new`` though a reload
    may not change them, each with its running value."""
    changes = []
    for path, attrs in fixed_keys(Config):
        before: Any = old
        after: Any = new
        for attr in attrs:
            before, after = getattr(before, attr), getattr(after, attr)
        if before != after:
            changes.append(
                f"{path}: cannot change on reload (restart the service); it is {before!r}"
            )
    return changes


def load(path: str | Path, *, before_imports: Callable[[Config], None] | None = None) -> Config:
    """Read and check the file at ``path``; ConfigError for anything wrong with it.
    ``before_imports`` as for ``parse``."""
    return parse(read_file(path), str(path), before_imports=before_imports)


def read_file(path: str | Path) -> bytes:
    """The bytes of the configuration file at ``path``. ConfigError, without reading
    it, for what is not a regular file (a FIFO would block) or is larger than
    MAX_BYTES (parsing YAML takes about 8 s a MiB, and a reload must not stall)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError([f"{path}: not a regular file"])
        if st.st_size > MAX_BYTES:
            raise ConfigError([_too_big(path, st.st_size)])
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:  # it grew while being read
        raise ConfigError([_too_big(path, len(data))])
    return data


def unsafe_permissions(path: str | Path) -> list[str]:
    """Warnings, one a line, when others than the file's owner can change what it runs:
    the file, or its directory (where it could be replaced), writable by its group or
    by anyone. (The configuration is code.)"""
    warnings = []
    file = Path(path)
    for what, target in (("the file", file), ("its directory", file.resolve().parent)):
        try:
            st = target.stat()
        except OSError:
            continue
        sticky = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
        who = [
            w
            for bit, w in ((stat.S_IWGRP, "its group"), (stat.S_IWOTH, "anyone"))
            if st.st_mode & bit
        ]
        if who and not sticky:
            warnings.append(
                f"{path}: {what} is writable by {' and '.join(who)} (mode "
                f"{stat.S_IMODE(st.st_mode):04o}): the configuration is code - whoever can "
                "change it runs code in the service; make it writable by its owner only"
            )
    return warnings


def _too_big(path: str | Path, size: int) -> str:
    return (
        f"{path}: {size:,} bytes, over the limit of {MAX_BYTES:,} ({MAX_BYTES // 1024} KiB) "
        "for a configuration file: is it the right file?"
    )


def parse(
    data: bytes | str,
    source: str,
    base_dir: Path | None = None,
    *,
    before_imports: Callable[[Config], None] | None = None,
) -> Config:
    """Check a YAML document; ``source`` names it in messages and, unless ``base_dir``
    is given, its directory is where relative paths start. ``before_imports(config)``
    is called once the document is checked, before any handler or factory is imported
    (the service installs lockdep there when ``lockdep.instrument`` is on)."""
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
    reader = Reader(source, base_dir)
    config = read_document(reader, Config, document)
    if config is not None and before_imports is not None:
        before_imports(config)
    reader.run_deferred()
    reader.raise_if_any()
    assert isinstance(config, Config)
    return config


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is not None and problem:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return " ".join(str(exc).split())
