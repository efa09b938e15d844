"""deploy/: what the files must say for the service to be run well - the systemd unit, the
Kubernetes manifests, the Prometheus rules and their tests, the Grafana dashboard. (The
tools that read them check them in `make deploy-check`; the queries run against a real
Prometheus in test_queries.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from threadpool.service.config import ServiceConfig, parse
from threadpool.service.runtime import STOP_GRACE

from .conftest import REPO
from .promql import selectors

DEPLOY = REPO / "deploy"
UNIT = DEPLOY / "systemd" / "threadpool.service"
ALERTS = [
    "ThreadpoolTargetDown",
    "ThreadpoolWorkersUnhealthy",
    "ThreadpoolHeartbeatTimeouts",
    "ThreadpoolQueueGrowing",
    "ThreadpoolFailureRatioHigh",
    "ThreadpoolItemsRejectedOrExpired",
    "ThreadpoolProducerDown",
    "LockdepViolation",
    "ThreadpoolConfigReloadFailed",
]


def directives(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#")
    return {key.strip(): value.strip() for key, value in pairs}


def manifests() -> dict[str, dict[str, Any]]:
    """Every Kubernetes object of deploy/kubernetes/, by kind."""
    objects = {}
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            objects[doc["kind"]] = doc
    return objects


# --- systemd -----------------------------------------------------------------------------------


def test_unit_is_type_notify_with_a_watchdog_reload_and_the_serve_command() -> None:
    d = directives(UNIT.read_text())
    assert d["Type"] == "notify" and int(d["WatchdogSec"]) > 0
    assert d["ExecStart"].endswith("threadpool serve --config /etc/threadpool/config.yaml")
    assert d["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert d["RestartPreventExitStatus"] == "2"  # an invalid configuration
    assert d["Restart"] == "on-failure"


def test_unit_gives_the_drain_room_and_is_hardened() -> None:
    d = directives(UNIT.read_text())
    assert int(d["TimeoutStopSec"]) > ServiceConfig().drain_timeout + STOP_GRACE
    for key, value in {
        "DynamicUser": "yes",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert d[key] == value, key


# --- Kubernetes --------------------------------------------------------------------------------


def test_manifests_are_a_configmap_deployment_service_and_podmonitor() -> None:
    assert set(manifests()) == {"ConfigMap", "Deployment", "Service", "PodMonitor"}


def test_the_configmap_holds_a_valid_configuration_listening_on_every_interface(
    tmp_path: Path,
) -> None:
    text = manifests()["ConfigMap"]["data"]["config.yaml"]
    config = parse(text, "configmap/config.yaml", tmp_path)
    assert config.service.listen == "0.0.0.0"
    # ...and only there: the shipped file keeps the loopback default.
    assert parse((REPO / "config.yaml").read_text(), "config.yaml", tmp_path).service.listen == (
        "127.0.0.1"
    )


def container() -> dict[str, Any]:
    (c,) = manifests()["Deployment"]["spec"]["template"]["spec"]["containers"]
    return c


def test_probes_read_health_and_liveness_is_more_patient_than_readiness() -> None:
    c = container()
    ready, live = c["readinessProbe"], c["livenessProbe"]
    for probe in (ready, live):
        assert probe["httpGet"] == {"path": "/health", "port": "http"}

    def patience(p: dict[str, Any]) -> int:
        return int(p.get("initialDelaySeconds", 0) + p["periodSeconds"] * p["failureThreshold"])

    assert patience(live) > 2 * patience(ready)


def test_termination_grace_is_longer_than_the_drain(tmp_path: Path) -> None:
    deployment = manifests()["Deployment"]
    text = manifests()["ConfigMap"]["data"]["config.yaml"]
    drain = parse(text, "configmap/config.yaml", tmp_path).service.drain_timeout
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > (
        drain + STOP_GRACE
    )


def test_the_pod_runs_non_root_read_only_with_resources() -> None:
    pod = manifests()["Deployment"]["spec"]["template"]["spec"]
    c = container()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert set(c["resources"]) == {"requests", "limits"}
    assert all({"cpu", "memory"} <= set(c["resources"][k]) for k in ("requests", "limits"))


def test_prometheus_finds_the_pods_by_annotations_and_by_the_podmonitor() -> None:
    objects = manifests()
    template = objects["Deployment"]["spec"]["template"]
    ports = {p["name"]: p["containerPort"] for p in container()["ports"]}
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == ports["http"]
    assert annotations["prometheus.io/path"] == "/metrics"
    monitor = objects["PodMonitor"]["spec"]
    assert monitor["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["podMetricsEndpoints"]] == ["http"]
    service = objects["Service"]["spec"]
    assert service["selector"].items() <= template["metadata"]["labels"].items()
    assert [p["targetPort"] for p in service["ports"]] == ["http"]


# --- Prometheus --------------------------------------------------------------------------------


def rules() -> list[dict[str, Any]]:
    (group,) = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
    return list(group["rules"])


def test_the_alerts_are_those_an_operator_needs() -> None:
    assert [r["alert"] for r in rules()] == ALERTS
    for rule in rules():
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_every_alert_has_a_test_that_fires_and_one_that_does_not() -> None:
    tests = yaml.safe_load((DEPLOY / "prometheus" / "alerts_test.yml").read_text())["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    for alert in ALERTS:
        mine = [case for case in cases if case["alertname"] == alert]
        assert any(case["exp_alerts"] for case in mine), f"{alert} never fires"
        assert any(not case["exp_alerts"] for case in mine), f"{alert} always fires"


def test_the_readme_says_what_to_do_about_each_alert() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Operating it") :]
    for alert in ALERTS:
        assert f"`{alert}`" in section, alert


# --- Grafana -----------------------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    return dict(json.loads((DEPLOY / "grafana" / "threadpool.json").read_text()))


def test_the_dashboard_is_importable_with_a_datasource_variable() -> None:
    d = dashboard()
    assert d["uid"] and d["title"] and d["schemaVersion"] >= 30
    names = [v["name"] for v in d["templating"]["list"]]
    assert names == ["datasource", "instance", "pool"]
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    for panel in d["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"] and all(t["expr"] for t in panel["targets"])


def test_the_dashboard_shows_what_the_issue_asks_for() -> None:
    exprs = " ".join(t["expr"] for p in dashboard()["panels"] for t in p.get("targets", []))
    for series in [
        "threadpool_threads_target",
        "threadpool_threads",
        "threadpool_threads_busy",
        "threadpool_queue_items",
        "threadpool_items_processed_total",
        "threadpool_items_failed_total",
        "threadpool_items_rejected_total",
        "threadpool_items_expired_total",
        "threadpool_item_duration_seconds_bucket",
        "threadpool_queue_wait_seconds_bucket",
        "threadpool_heartbeat_unhealthy_workers",
        "threadpool_heartbeat_timeouts_total",
        "lockdep_lock_classes",
        "lockdep_dependencies",
        "lockdep_violations_total",
        "lockdep_lock_wait_seconds_total",
    ]:
        assert series in {s.split("{")[0] for s in selectors(exprs)}, series


# --- the PromQL scanner the query test relies on -----------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("up", ["up"]),
        ('up{job=~"threadpool.*"} == 0', ['up{job=~"threadpool.*"}']),
        (
            'histogram_quantile(0.99, sum by (queue, le) (rate(x_bucket{a="}"}[5m])))',
            ['x_bucket{a="}"}'],
        ),
        ("sum by (pool) (rate(a[5m])) / ignoring(le) group_left(q) b > bool 0.05", ["a", "b"]),
        ("increase(a[10m]) > 0 and b offset 5m unless c", ["a", "b", "c"]),
        ('count(p == 0) or vector(0) + label_replace(q, "x", "$1", "y", "(.*)")', ["p", "q"]),
        ('{__name__="a"}', ['{__name__="a"}']),
        ("topk(10, sum without (instance) (x:rate5m))", ["x:rate5m"]),
    ],
)
def test_selectors_are_found_in_promql(expr: str, expected: list[str]) -> None:
    assert selectors(expr) == expected
