"""Every query of the Grafana dashboard and of the alert rules, run against a real
Prometheus scraping the service: a query Prometheus rejects, or a selector that matches no
series the service exports, fails the test - so a renamed metric or label cannot silently
break a panel or an alert. The rules are also loaded into that Prometheus and must evaluate
without error."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import DEADLINE, REPO, poll
from .process import ServiceProcess
from .prometheus_server import Prometheus
from .promql import selectors
from .test_process import DRAIN, ticking

pytestmark = pytest.mark.slow  # subprocesses: the service and Prometheus

DEPLOY = REPO / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
SCRAPE_DEADLINE = 90.0
# What Grafana puts in place of the dashboard's variables ("All" for the multi-valued ones).
VARIABLES = {"$__rate_interval": "30s", "$instance": ".*", "$pool": ".*"}
LABEL_VALUES = re.compile(r"^label_values\((.*),\s*(\w+)\)$")


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    d = json.loads((DEPLOY / "grafana" / "threadpool.json").read_text())
    out = []
    for panel in d["panels"]:
        for target in panel.get("targets", []):
            out.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
    for variable in d["templating"]["list"]:
        if variable["type"] == "query":
            match = LABEL_VALUES.match(variable["query"]["query"])
            assert match, variable["query"]
            selector, label = match.groups()
            out.append((f"variable {variable['name']}", f"count by ({label}) ({selector})"))
    return out


def rule_queries() -> list[tuple[str, str]]:
    (group,) = yaml.safe_load(RULES.read_text())["groups"]
    return [(f"alert {rule['alert']}", rule["expr"]) for rule in group["rules"]]


def substitute(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


@pytest.fixture
def scraped(tmp_path: Path) -> Iterator[Prometheus]:
    """Prometheus scraping a service that exports every series the deploy files use:
    histograms, lockdep statistics, a producer, a reload."""
    d = ticking(threads=2)
    d["lockdep"] = {"on_violation": "log", "stats": True}
    svc = ServiceProcess(tmp_path, d)
    prometheus = None
    try:
        prometheus = Prometheus(tmp_path, svc.url.removeprefix("http://"), [RULES])
        yield prometheus
        svc.signal(signal.SIGTERM)
        assert svc.wait(DRAIN + DEADLINE) == 0
    finally:
        if prometheus is not None:
            prometheus.stop()
        svc.stop()


def test_every_dashboard_and_rule_query_runs_on_series_the_service_exports(
    scraped: Prometheus,
) -> None:
    prometheus = scraped
    poll(
        "three scrapes",
        lambda: (
            prometheus.value('count_over_time(up{job="threadpool"}[1m])')
            and prometheus.value('count_over_time(up{job="threadpool"}[1m])') >= 3
        ),
        SCRAPE_DEADLINE,
    )  # type: ignore[operator]
    queries = dashboard_queries() + rule_queries()
    assert len(queries) > 40
    problems = []
    for where, expr in queries:
        promql = substitute(expr)
        answer = prometheus.api("query", query=promql)
        assert answer is not None
        if answer["status"] != "success":
            problems.append(f"{where}: {promql}: {answer.get('error')}")
            continue
        for selector in selectors(promql):
            if not prometheus.query(f"count({selector})"):
                problems.append(f"{where}: {selector} matches no series the service exports")
    assert not problems, "\n".join(problems)
    rules: list[dict[str, Any]] = []

    def evaluated() -> bool:
        answer = prometheus.api("rules")
        assert answer is not None and answer["status"] == "success"
        rules[:] = [r for g in answer["data"]["groups"] for r in g["rules"]]
        return bool(rules) and all(r.get("lastEvaluation", "").startswith("20") for r in rules)

    poll("the rules evaluated", evaluated, SCRAPE_DEADLINE)
    assert {r["name"] for r in rules} == {q[0].removeprefix("alert ") for q in rule_queries()}
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]
