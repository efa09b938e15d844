"""A pytest plugin: the whole session runs under ``lockdep.install()``.

Enable it with ``pytest -p lockdep.pytest_plugin`` or ``pytest --lockdep`` (the
option exists whenever this package is installed). A violation, in any thread,
fails the test during which it happened, with the report; one outside any test
(collection, session fixtures) fails the session. ``--lockdep-graph FILE`` also
saves the learned graph at the end, merged with the file (see ``persist``).

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
        self.current: list[lockdep.Violation] = []
        self.outside: list[lockdep.Violation] = []
        self.in_test = False
        self._seen: set[tuple[str, frozenset[str]]] = set()

    def __call__(self, violation: lockdep.Violation) -> None:
        if self._suppressions.match(violation) is not None:
            return
        with self._lock:
            if violation.key in self._seen:
                return  # one report per distinct violation, in the test that first met it
            self._seen.add(violation.key)
            (self.current if self.in_test else self.outside).append(violation)

    def take(self) -> list[lockdep.Violation]:
        with self._lock:
            found, self.current = self.current, []
            return found


def _enabled(config: pytest.Config) -> bool:
    plugins = config.getoption("plugins", default=None) or []
    return bool(config.getoption("lockdep", default=False)) or PLUGIN in plugins


def pytest_configure(config: pytest.Config) -> None:
    if not _enabled(config):
        return
    try:
        suppressions = Suppressions.load(config.getoption("lockdep_suppress", default=[]) or [])
    except SuppressionError as exc:
        raise pytest.UsageError(str(exc)) from exc
    collector = _Collector(suppressions)
    config.stash[_KEY] = collector
    lockdep.configure(on_violation=collector)
    lockdep.install()
    graph = config.getoption("lockdep_graph", default=None)
    if graph:
        persist.save_at_exit(graph)
    config.addinivalue_line("markers", "lockdep: the session runs under lockdep")


_KEY = pytest.StashKey[_Collector]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    collector = item.config.stash.get(_KEY, None)
    if collector is not None:
        collector.in_test = True
    try:
        yield
    finally:
        if collector is not None:
            collector.in_test = False


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
    outside = collector.outside + collector.take()
    if outside:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        text = "\n\n".join(v.report for v in outside)
        if reporter is not None:
            reporter.write_sep(
                "=", f"lockdep: {len(outside)} violation(s) outside any test", red=True
            )
            reporter.write_line(text)
        if session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.stash.get(_KEY, None) is not None:
        lockdep.uninstall()
        del config.stash[_KEY]
