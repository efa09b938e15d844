"""The long-running service: pools from ``config.yaml``, reloaded live, exported.

``serve(path)`` is ``python -m threadpool serve --config path``:

1. load the configuration; a bad one is printed, problem by problem, and the
   process exits 2;
2. set up logging and lockdep from it, before any pool exists, so that the
   pools' own locks are tracked; with ``lockdep.instrument``, lockdep is
   installed before the handlers and producers are even imported, so that
   their own ``threading`` locks are validated too;
3. bind the HTTP listener (a port in use: a clear error, exit 1), start the
   heartbeat checker, the pools, the producers, then serve; with
   ``NOTIFY_SOCKET`` set, tell systemd ``READY=1`` and keep its watchdog fed
   while healthy;
4. until SIGTERM or SIGINT: reload on SIGHUP and when the file's content
   changes (looked at every ``reload_check_interval`` seconds, by its metadata
   first), and retry detaching queues a reload removed while an item of theirs
   was still processing (``Runtime.retry_detach``). A new file is parsed on a thread of its
   own (``reload.Loader``), so that SIGTERM is answered at once even during a
   slow parse or import; it is applied on the main thread;
5. shut down: stop the producers (no new work), drain the pools for up to
   ``drain_timeout`` seconds, stop them within a short grace after that (the
   items left are logged by count, per queue; a worker stuck in a handler is
   named and left behind), stop the listener; exit 0.

A reload either applies a whole valid configuration or none of it: an
invalid file is logged, problem by problem, and counted in
``threadpool_config_reloads_total{result="error"}``, and the running
configuration stays. The listen address and port cannot change without a
restart (such a reload is rejected). See ``runtime`` for what a reload does
to pools and queues.

``Service`` may also be embedded and driven by hand (``start``, ``reload``,
``check_file``, ``shutdown``); pass ``manage_lockdep=False`` when the host
configures lockdep itself.
"""

from __future__ import annotations

import functools
import logging
import signal
import sys
from time import monotonic

import lockdep
from threadpool import HeartbeatMap

from . import logs
from .config import (
    Config,
    ConfigError,
    ProducerConfig,
    fixed_changes,
    load,
    parse,
    unsafe_permissions,
)
from .httpd import HTTPService, ListenError
from .metrics import LockdepCollector, PoolCollector, ServiceCollector, registry, version
from .notify import Notifier, Watchdog, watchdog_interval
from .producers import ProducerThread, stop_all
from .reload import ConfigFile, Content, Loader, Outcome
from .runtime import Runtime
from .signals import SignalPipe

logger = logging.getLogger("threadpool.service")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
RETRY_INTERVAL = 0.5  # seconds between tries at detaching a removed queue still busy


class Service:
    """See the module docstring. Only one thread drives it (start, reload, run,
    shutdown); the HTTP listener and the producers only read it."""

    def __init__(
        self,
        config: Config,
        *,
        manage_lockdep: bool = True,
        notifier: Notifier | None = None,
        log_limit: logs.TracebackLimit | None = None,
    ) -> None:
        self.config = config
        self.reloads = {"success": 0, "error": 0}
        self.last_reload_ok = True  # the running configuration loaded; no reload failed since
        self._manage_lockdep = manage_lockdep
        self._notifier = notifier or Notifier(None)
        self._log_limit = log_limit
        self._heartbeat_map: HeartbeatMap | None = None
        self._runtime: Runtime | None = None
        self._http: HTTPService | None = None
        self._watchdog: Watchdog | None = None
        # Replaced whole, never changed in place: the listener's threads read it.
        self._producers: dict[str, ProducerThread] = {}
        self._file = ConfigFile(config.source)

    @property
    def heartbeat_map(self) -> HeartbeatMap:
        if self._heartbeat_map is None:
            raise RuntimeError("the service is not started")
        return self._heartbeat_map

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("the service is not started")
        return self._runtime

    @property
    def url(self) -> str:
        if self._http is None:
            raise RuntimeError("the service is not started")
        return self._http.url

    def unhealthy(self) -> list[str]:
        """What makes the service unhealthy, one line each: the workers past their grace
        at the last heartbeat check, then the dead producers."""
        dead = [
            f"producer {name}: {thread.death}"
            for name, thread in self._producers.items()
            if thread.death is not None
        ]
        return self.heartbeat_map.get_unhealthy_worker_names() + dead

    def healthy(self) -> bool:
        """A fresh heartbeat check passes and no producer is dead: what systemd's
        watchdog goes by (``/health`` reads ``unhealthy()``, the checker's last check)."""
        if not self.heartbeat_map.is_healthy():
            return False
        return all(thread.death is None for thread in self._producers.values())

    def producers_up(self) -> dict[str, bool]:
        """Each producer: False once it is dead."""
        return {name: thread.death is None for name, thread in self._producers.items()}

    # --- start and stop ------------------------------------------------------------

    def start(self) -> None:
        """Configure, bind, start everything, serve. ListenError when the address is
        taken (nothing is left running then)."""
        cfg = self.config
        logs.set_level(cfg.service.log_level)
        if self._manage_lockdep:
            lockdep.configure(**cfg.lockdep.kwargs())
        self._heartbeat_map = HeartbeatMap("service")
        self._runtime = Runtime(self._heartbeat_map)
        reg = registry(
            PoolCollector(self._runtime.pools, self._heartbeat_map),
            ServiceCollector(
                lambda: dict(self.reloads), lambda: self.last_reload_ok, self.producers_up
            ),
            LockdepCollector(lambda: self.config.metrics.lockdep_top_classes),
        )
        self._http = HTTPService(cfg.service.listen, cfg.service.port, reg, self.unhealthy)
        try:
            self._heartbeat_map.start_checker(cfg.heartbeat.interval, cfg.heartbeat.file)
            self._runtime.apply(cfg.pools, cfg.service.drain_timeout)
            self._start_producers(cfg.producers)
            self._http.start()
        except BaseException:
            self.shutdown()
            raise
        logger.info(
            "threadpool service %s started from %s (pools: %d, queues: %d, producers: %d)",
            version(),
            cfg.source,
            len(cfg.pools),
            sum(len(p.queues) for p in cfg.pools),
            len(cfg.producers),
        )
        interval = watchdog_interval()
        if interval is not None and self._notifier.enabled:
            self._watchdog = Watchdog(self._notifier, interval, self.healthy)
            self._watchdog.start()
        self._notifier.ready(f"serving {self._http.url}")

    def shutdown(self) -> dict[str, int]:
        """Stop taking work, drain for up to ``drain_timeout``, stop everything.
        Returns the items left, by ``pool/queue``. Safe to call more than once."""
        timeout = self.config.service.drain_timeout
        self._notifier.stopping("draining")
        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None
        producers, self._producers = self._producers, {}
        stop_all(producers.values(), timeout)
        left = self._runtime.stop(timeout) if self._runtime is not None else {}
        if self._heartbeat_map is not None:
            self._heartbeat_map.stop_checker(timeout)
        if self._http is not None:
            self._http.close()
        if self._log_limit is not None:
            self._log_limit.flush(force=True)
        return left

    def run(self, signals: SignalPipe) -> signal.Signals:
        """Serve until SIGTERM or SIGINT, which it returns; SIGHUP reloads, and so
        does a change of the file's content. Files are parsed off this thread, so a
        stop signal is answered at once, even during a slow parse or import."""
        loader = Loader(signals.wake)
        pending: str | None = None  # a reload asked for while another was loading
        now = monotonic()
        next_look = now + self.config.service.reload_check_interval
        next_retry = now + RETRY_INTERVAL
        while True:
            interval = self.config.service.reload_check_interval
            wake = min(next_look if interval else float("inf"), next_retry)
            for signum in signals.wait(wake - monotonic()):
                if signum != signal.SIGHUP:
                    logger.info("%s: shutting down", signum.name)
                    return signum
                logger.info("SIGHUP: reloading %s", self.config.source)
                pending = "SIGHUP"
            done = loader.take()
            if done is not None:
                self._finish_reload(*done)
            now = monotonic()
            if interval and now >= next_look:
                if not loader.busy and self._file.changed() is not None:
                    pending = pending or "the file changed"
                next_look = now + (self.config.service.reload_check_interval or interval)
            if pending is not None and not loader.busy:
                loader.start(pending, functools.partial(self._parse, self._file.read()))
                pending = None
            if now >= next_retry:
                self.runtime.retry_detach()
                next_retry = now + RETRY_INTERVAL
            if self._log_limit is not None:
                self._log_limit.flush()

    # --- reloads ---------------------------------------------------------------------

    def check_file(self) -> bool:
        """Reload if the file's content changed since it was last read; whether it did
        (a file that changed to something invalid counts once, not at every look; an
        unchanged file is not even read)."""
        content = self._file.changed()
        if content is None:
            return False
        return self._finish_reload("the file changed", self._outcome(content))

    def reload(self, reason: str) -> bool:
        """Read the file and apply it whole; on any problem keep the running
        configuration, log and count the error. Whether it applied."""
        return self._finish_reload(reason, self._outcome(self._file.read()))

    def _outcome(self, content: Content) -> Outcome:
        try:
            return self._parse(content)
        except ConfigError as exc:
            return exc

    def _parse(self, content: Content) -> Config:
        """The configuration in ``content`` (ConfigError if it is not usable)."""
        if isinstance(content, ConfigError):
            raise content
        return parse(content, self.config.source, self.config.base_dir)

    def _finish_reload(self, reason: str, outcome: Outcome) -> bool:
        try:
            if isinstance(outcome, ConfigError):
                raise outcome
            self._check_fixed(outcome)
        except ConfigError as exc:
            self.reloads["error"] += 1
            self.last_reload_ok = False
            logger.error(
                "reload (%s) rejected, %d problems; the running configuration stays:",
                reason,
                len(exc.problems),
            )
            for problem in exc.problems:
                logger.error("  %s", problem)
            return False
        try:
            self._apply(outcome)
        except Exception:
            self.reloads["error"] += 1
            self.last_reload_ok = False
            logger.exception("reload (%s) applied only in part", reason)
            return False
        self.reloads["success"] += 1
        self.last_reload_ok = True
        logger.info("reloaded %s (%s)", self.config.source, reason)
        for warning in outcome.warnings:
            logger.warning("%s", warning)
        self._notifier.status(f"serving {self.url}; reloaded ({reason})")
        return True

    def _check_fixed(self, new: Config) -> None:
        problems = [f"{new.source}: {change}" for change in fixed_changes(self.config, new)]
        if problems:
            raise ConfigError(problems)

    def _apply(self, new: Config) -> None:
        old, self.config = self.config, new
        if new.service.log_level != old.service.log_level:
            logs.set_level(new.service.log_level)
            logger.info("log level %s", new.service.log_level)
        if self._manage_lockdep and new.lockdep != old.lockdep:
            lockdep.configure(**new.lockdep.kwargs())
            logger.info("lockdep: %s", new.lockdep)
        if new.heartbeat != old.heartbeat:
            self.heartbeat_map.stop_checker(new.service.drain_timeout)
            self.heartbeat_map.start_checker(new.heartbeat.interval, new.heartbeat.file)
        wanted = {p.name: p for p in new.producers}
        keep = {
            name: thread
            for name, thread in self._producers.items()
            if wanted.get(name) == thread.config and thread.death is None
        }
        gone = [thread for name, thread in self._producers.items() if name not in keep]
        self._producers = keep
        # Changed, removed, or dead: a changed or dead one starts anew.
        stop_all(gone, new.service.drain_timeout)
        self.runtime.apply(new.pools, new.service.drain_timeout)
        self._start_producers([p for p in new.producers if p.name not in self._producers])

    def _start_producers(
        self, producers: list[ProducerConfig] | tuple[ProducerConfig, ...]
    ) -> None:
        for pc in producers:
            thread = ProducerThread(pc, self.runtime)
            self._producers = {**self._producers, pc.name: thread}
            thread.start()


def _instrument(config: Config) -> None:
    """With ``lockdep.instrument``, install lockdep before the handlers and producers
    are imported, so that the locks they make (at import too) are validated."""
    if config.lockdep.instrument and not lockdep.installed():
        lockdep.configure(**config.lockdep.kwargs())
        lockdep.install()


def serve(path: str) -> int:
    """Run the service from the configuration at ``path``; the exit status."""
    try:
        config = load(path, before_imports=_instrument)
    except ConfigError as exc:
        print(f"threadpool: invalid configuration, {len(exc.problems)} problems:", file=sys.stderr)
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    limit = logs.TracebackLimit()
    logs.setup(config.service.log_level, limit=limit)
    for warning in (*unsafe_permissions(path), *config.warnings):
        logger.warning("%s", warning)
    with SignalPipe() as signals:
        service = Service(config, notifier=Notifier.from_environ(), log_limit=limit)
        try:
            service.start()
        except ListenError as exc:
            logger.error("%s", exc)
            return EXIT_FAILURE
        try:
            service.run(signals)
        finally:
            service.shutdown()
    logger.info("stopped")
    return EXIT_OK
