"""A pytest plugin: the whole session runs under ``lockdep.install()``.

Enable it with ``pytest -p lockdep.pytest_plugin`` or ``pytest --lockdep`` (the
option exists whenever this package is installed). lockdep is installed before
``conftest.py`` files are loaded, so the locks of what they import are tracked,
and ``install()`` adopts the standard library's older locks (``logging``'s). A
violation, in any thread, fails the test during which it happened, with the
report; one outside any test (collection, session fixtures) fails the session.
Every distinct violation is also listed in the terminal summary, whatever the
capture mode. ``--lockdep-graph FILE`` also saves the learned graph at the end,
merged with the file (see ``persist``).

A test that calls ``lockdep.configure(on_violation=...)`` itself takes over the
response while it runs; restoring the plugin's setting afterwards is its job.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

import lockdep
from lockdep import persist
from lockdep.suppress import SuppressionError, Suppressions
from lockdep.violations import Once

PLUGIN = "lockdep.pytest_plugin"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lockdep")
    group.addoption(
        "--lockdep",
        action="store_true",
        help="run the session under lockdep.install(); a lock-order violation fails its test",
    )
    group.addoption(
        "--lockdep-suppress",
        metavar="FILE",
        action="append",
        default=[],
        help="with --lockdep: known violations (see lockdep.suppress) that do not fail tests",
    )
    group.addoption(
        "--lockdep-graph",
        metavar="FILE",
        help="with --lockdep: save the learned lock graph to FILE, merged with its contents",
    )


class _Collector:
    """on_violation for the session: violations go to the test that is running."""

    def __init__(self, suppressions: Suppressions) -> None:
        import _thread

        self._suppressions = suppressions
        self._lock = _thread.allocate_lock()  # not tracked
        self._once = Once()  # one report per distinct violation, in the test that met it
        self.current: list[lockdep.Violation] = []
        self.outside: list[lockdep.Violation] = []
        self.all: list[tuple[str, lockdep.Violation]] = []  # (where, violation)
        self.where: str | None = None  # the running test's id, and phase
        self.suppressed = 0

    def __call__(self, violation: lockdep.Violation) -> None:
        if self._suppressions.match(violation) is not None:
            with self._lock:
                self.suppressed += 1
            return
        if not self._once.first(violation):
            return
        with self._lock:
            where = self.where
            (self.current if where is not None else self.outside).append(violation)
            self.all.append((where or "outside any test", violation))

    def take(self) -> list[lockdep.Violation]:
        with self._lock:
            found, self.current = self.current, []
            return found


def _enabled(config: pytest.Config) -> bool:
    namespace = getattr(config, "known_args_namespace", None)
    if namespace is not None:
        plugins = getattr(namespace, "plugins", None) or []
        if getattr(namespace, "lockdep", False) or PLUGIN in plugins:
            return True
    plugins = config.getoption("plugins", default=None) or []
    return bool(config.getoption("lockdep", default=False)) or PLUGIN in plugins


def _option(config: pytest.Config, name: str, default: Any) -> Any:
    namespace = getattr(config, "known_args_namespace", None)
    value = getattr(namespace, name, None) if namespace is not None else None
    return value if value is not None else config.getoption(name, default=default)


def _start(config: pytest.Config) -> None:
    """Install lockdep for the session (once): before conftest.py files are loaded when
    pytest lets plugins run that early, else at configure."""
    if config.stash.get(_KEY, None) is not None:
        return
    try:
        suppressions = Suppressions.load(_option(config, "lockdep_suppress", []) or [])
    except SuppressionError as exc:
        raise pytest.UsageError(str(exc)) from exc
    collector = _Collector(suppressions)
    config.stash[_KEY] = collector
    lockdep.configure(on_violation=collector)
    lockdep.install()
    graph = _option(config, "lockdep_graph", None)
    if graph:
        persist.save_at_exit(graph)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    # Called for plugins loaded by entry point or -p, before conftest.py files (and
    # what they import) are loaded: their locks made at import are then tracked.
    if _enabled(early_config):
        _start(early_config)


def pytest_configure(config: pytest.Config) -> None:
    if _enabled(config):
        _start(config)
        config.addinivalue_line("markers", "lockdep: the session runs under lockdep")


_KEY = pytest.StashKey[_Collector]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    collector = item.config.stash.get(_KEY, None)
    if collector is not None:
        collector.where = item.nodeid
    try:
        yield
    finally:
        if collector is not None:
            collector.where = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[Any]
) -> Generator[None, Any]:
    outcome = yield
    collector = item.config.stash.get(_KEY, None)
    if collector is None:
        return
    found = collector.take()
    if not found:
        return
    report = outcome.get_result()
    text = "\n\n".join(v.report for v in found)
    header = f"lockdep: {len(found)} violation(s) during {call.when} of {item.nodeid}"
    if report.passed or report.skipped:
        report.outcome = "failed"
        report.longrepr = f"{header}\n{text}"
    else:
        report.sections.append(("lockdep", f"{header}\n{text}"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    collector = session.config.stash.get(_KEY, None)
    if collector is None:
        return
    if (collector.outside or collector.take()) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Every distinct violation in the terminal, whatever the capture mode: a line each,
    and the whole report of those met outside any test (collection, session
    fixtures); a test's own are in its failure report."""
    collector = config.stash.get(_KEY, None)
    if collector is None:
        return
    suppressed = f", {collector.suppressed} suppressed" if collector.suppressed else ""
    if not collector.all:
        terminalreporter.write_line(f"lockdep: no violation{suppressed}")
        return
    terminalreporter.write_sep(
        "=", f"lockdep: {len(collector.all)} violation(s){suppressed}", red=True
    )
    for where, violation in collector.all:
        classes = " -> ".join(violation.classes)
        terminalreporter.write_line(f"{violation.kind}: {classes}  (in {where})")
    for violation in collector.outside:
        terminalreporter.write_line("")
        terminalreporter.write_line(violation.report)


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.stash.get(_KEY, None) is not None:
        lockdep.uninstall()
        del config.stash[_KEY]
