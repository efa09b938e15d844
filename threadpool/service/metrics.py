"""Prometheus export: custom collectors that read the pools and lockdep at scrape time.

Nothing is counted twice: the pools, queues, heartbeat map and lockdep keep
their own counters (see ``ThreadPool.stats``, ``HeartbeatMap.stats``,
``lockdep.stats``), and a scrape turns a snapshot of them into metric
families. The workers pay nothing for being observable.

``PoolCollector`` (labels ``pool``, ``queue``): ``threadpool_threads``,
``threadpool_threads_target``, ``threadpool_threads_busy``, ``threadpool_paused``,
``threadpool_queue_items``, ``threadpool_queue_in_flight``,
``threadpool_items_processed_total``, ``threadpool_items_failed_total``,
``threadpool_items_rejected_total`` and ``threadpool_items_expired_total`` (0:
bounded queues and deadlines do not exist yet), ``threadpool_busy_seconds_total``,
the histograms ``threadpool_item_duration_seconds`` (one observation per process
step: an item, or a whole batch) and ``threadpool_queue_wait_seconds`` (per
item) for queues built with histograms, ``threadpool_heartbeat_workers``,
``threadpool_heartbeat_unhealthy_workers``, ``threadpool_heartbeat_timeouts_total``.

``ServiceCollector``: ``threadpool_config_reloads_total{result}``,
``threadpool_config_last_reload_successful``, ``threadpool_producer_up{producer}``
and ``threadpool_build_info``.

``LockdepCollector``: ``lockdep_enabled``, ``lockdep_lock_classes``,
``lockdep_dependencies``, ``lockdep_checks_total``, ``lockdep_violations_total{kind}``
and, with lockdep's ``stats`` on, per lock class (label ``lock``) for the
``top_classes`` classes with the most wait time: ``lockdep_lock_wait_seconds_total``,
``lockdep_lock_hold_seconds_total``, ``lockdep_lock_contentions_total``,
``lockdep_lock_acquisitions_total``.
"""

from __future__ import annotations

import heapq
import platform
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib import metadata
from typing import Any

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

import lockdep
from threadpool import HeartbeatMap, ThreadPool

from .config import MetricsConfig

VIOLATION_KINDS = lockdep.KINDS


def version() -> str:
    try:
        return metadata.version("lockdep-threadpool")
    except metadata.PackageNotFoundError:
        return "unknown"


_LE_CACHE: dict[tuple[float, ...], list[str]] = {}


def _buckets(snapshot: Mapping[str, Any]) -> list[tuple[str, float]]:
    """A histogram snapshot (``threadpool.histogram``) as Prometheus ``le`` buckets."""
    bounds = tuple(snapshot["bounds"])
    les = _LE_CACHE.get(bounds)
    if les is None:
        les = _LE_CACHE[bounds] = [*map(floatToGoString, bounds), "+Inf"]
    return list(zip(les, snapshot["counts"], strict=True))


class PoolCollector(Collector):
    """The pools (``pools()`` is called at each scrape) and the heartbeat map."""

    def __init__(
        self,
        pools: Callable[[], Iterable[ThreadPool]],
        heartbeat_map: HeartbeatMap | None = None,
    ) -> None:
        self._pools = pools
        self._heartbeat_map = heartbeat_map

    def collect(self) -> Iterator[Metric]:
        pool_labels = ["pool"]
        queue_labels = ["pool", "queue"]
        threads = GaugeMetricFamily(
            "threadpool_threads", "Worker threads running.", labels=pool_labels
        )
        target = GaugeMetricFamily(
            "threadpool_threads_target",
            "Worker threads wanted (set_num_threads).",
            labels=pool_labels,
        )
        busy = GaugeMetricFamily(
            "threadpool_threads_busy",
            "Worker threads processing a unit of work.",
            labels=pool_labels,
        )
        paused = GaugeMetricFamily(
            "threadpool_paused", "1 while the pool is paused.", labels=pool_labels
        )
        items = GaugeMetricFamily(
            "threadpool_queue_items", "Items waiting in the queue.", labels=queue_labels
        )
        in_flight = GaugeMetricFamily(
            "threadpool_queue_in_flight",
            "Units of work (items, or batches) taken by a worker and not yet finished.",
            labels=queue_labels,
        )
        processed = CounterMetricFamily(
            "threadpool_items_processed_total",
            "Items whose process and finish steps have run, whatever the outcome.",
            labels=queue_labels,
        )
        failed = CounterMetricFamily(
            "threadpool_items_failed_total",
            "Items whose process or finish step raised.",
            labels=queue_labels,
        )
        rejected = CounterMetricFamily(
            "threadpool_items_rejected_total",
            "Items refused by a full queue (queues are unbounded for now: always 0).",
            labels=queue_labels,
        )
        expired = CounterMetricFamily(
            "threadpool_items_expired_total",
            "Items not processed because their deadline passed (no deadlines yet: always 0).",
            labels=queue_labels,
        )
        busy_seconds = CounterMetricFamily(
            "threadpool_busy_seconds_total",
            "Seconds spent in the queue's process steps.",
            labels=queue_labels,
        )
        duration = HistogramMetricFamily(
            "threadpool_item_duration_seconds",
            "Duration of process steps (one item, or one batch).",
            labels=queue_labels,
        )
        wait = HistogramMetricFamily(
            "threadpool_queue_wait_seconds",
            "Time items waited in the queue before a worker took them.",
            labels=queue_labels,
        )
        for pool in self._pools():
            s = pool.stats()
            name = s["name"]
            threads.add_metric([name], s["threads"])
            target.add_metric([name], s["threads_target"])
            busy.add_metric([name], s["threads_busy"])
            paused.add_metric([name], 1 if s["paused"] else 0)
            for queue, q in s["queues"].items():
                labels = [name, queue]
                if q["items"] is not None:
                    items.add_metric(labels, q["items"])
                in_flight.add_metric(labels, q["in_flight"])
                processed.add_metric(labels, q["processed"])
                failed.add_metric(labels, q["failed"])
                rejected.add_metric(labels, 0)
                expired.add_metric(labels, 0)
                busy_seconds.add_metric(labels, q["busy_seconds"])
                for family, key in (
                    (duration, "item_duration_seconds"),
                    (wait, "queue_wait_seconds"),
                ):
                    h = q[key]
                    if h is not None:
                        family.add_metric(labels, _buckets(h), h["sum"])
        yield from (threads, target, busy, paused, items, in_flight, processed, failed)
        yield from (rejected, expired, busy_seconds, duration, wait)
        yield from self._heartbeat()

    def _heartbeat(self) -> Iterator[Metric]:
        hb = self._heartbeat_map
        if hb is None:
            return
        s = hb.stats()
        yield GaugeMetricFamily(
            "threadpool_heartbeat_workers",
            "Workers registered with the heartbeat map.",
            s["workers"],
        )
        yield GaugeMetricFamily(
            "threadpool_heartbeat_unhealthy_workers",
            "Workers past their grace at the last heartbeat check.",
            s["unhealthy_workers"],
        )
        yield CounterMetricFamily(
            "threadpool_heartbeat_timeouts_total",
            "Grace timeouts seen, each episode counted once.",
            s["timeouts_total"],
        )
        yield CounterMetricFamily(
            "threadpool_heartbeat_checks_total", "Heartbeat checks run.", s["checks"]
        )


class ServiceCollector(Collector):
    """What the service adds: configuration reloads (``reloads()`` returns
    ``{result: count}``, ``last_reload_ok()`` whether the last one applied), the
    producers (``producers()`` returns ``{name: alive}``) and the build."""

    def __init__(
        self,
        reloads: Callable[[], Mapping[str, int]],
        last_reload_ok: Callable[[], bool],
        producers: Callable[[], Mapping[str, bool]],
    ) -> None:
        self._reloads = reloads
        self._last_reload_ok = last_reload_ok
        self._producers = producers
        self._build = {"version": version(), "python": platform.python_version()}

    def collect(self) -> Iterator[Metric]:
        reloads = CounterMetricFamily(
            "threadpool_config_reloads_total",
            "Configuration reloads, by result (success, error).",
            labels=["result"],
        )
        for result, count in sorted(self._reloads().items()):
            reloads.add_metric([result], count)
        yield reloads
        yield GaugeMetricFamily(
            "threadpool_config_last_reload_successful",
            "1 if the last configuration reload applied (or none was tried), 0 if it failed.",
            1 if self._last_reload_ok() else 0,
        )
        up = GaugeMetricFamily(
            "threadpool_producer_up",
            "1 while the producer runs; 0 once its run() ended by itself (it is dead).",
            labels=["producer"],
        )
        for producer, alive in sorted(self._producers().items()):
            up.add_metric([producer], 1 if alive else 0)
        yield up
        info = GaugeMetricFamily(
            "threadpool_build_info",
            "Always 1; the labels name the version running.",
            labels=list(self._build),
        )
        info.add_metric(list(self._build.values()), 1)
        yield info


class LockdepCollector(Collector):
    """lockdep's counters and, with its ``stats`` on, the ``top_classes()`` lock classes
    with the most wait time (``top_classes`` is called at each scrape)."""

    def __init__(self, top_classes: Callable[[], int] | None = None) -> None:
        default = MetricsConfig().lockdep_top_classes
        self._top_classes = top_classes or (lambda: default)

    def collect(self) -> Iterator[Metric]:
        s = lockdep.stats()
        yield GaugeMetricFamily(
            "lockdep_enabled", "1 while lockdep validates lock order.", 1 if s["enabled"] else 0
        )
        yield GaugeMetricFamily("lockdep_lock_classes", "Lock classes registered.", s["classes"])
        yield GaugeMetricFamily(
            "lockdep_dependencies", "Edges of the lock dependency graph.", s["edges"]
        )
        yield CounterMetricFamily(
            "lockdep_checks_total", "Acquisitions validated against the graph.", s["checks"]
        )
        violations = CounterMetricFamily(
            "lockdep_violations_total", "Violations seen, by kind.", labels=["kind"]
        )
        by_kind = s["violations_by_kind"]
        for kind in sorted({*VIOLATION_KINDS, *by_kind}):
            violations.add_metric([kind], by_kind.get(kind, 0))
        yield violations
        locks: Mapping[str, Mapping[str, float]] = s.get("locks") or {}
        if not locks:
            return
        top = heapq.nlargest(
            self._top_classes(),
            locks.items(),
            key=lambda kv: (kv[1]["wait_seconds_total"], kv[1]["contentions"], kv[0]),
        )
        families = [
            (
                CounterMetricFamily(
                    "lockdep_lock_wait_seconds_total",
                    "Seconds spent waiting for locks of the class.",
                    labels=["lock"],
                ),
                "wait_seconds_total",
            ),
            (
                CounterMetricFamily(
                    "lockdep_lock_hold_seconds_total",
                    "Seconds locks of the class were held.",
                    labels=["lock"],
                ),
                "hold_seconds_total",
            ),
            (
                CounterMetricFamily(
                    "lockdep_lock_contentions_total",
                    "Acquisitions of the class that had to wait.",
                    labels=["lock"],
                ),
                "contentions",
            ),
            (
                CounterMetricFamily(
                    "lockdep_lock_acquisitions_total",
                    "Acquisitions of the class.",
                    labels=["lock"],
                ),
                "acquisitions",
            ),
        ]
        for family, key in families:
            for name, record in top:
                family.add_metric([name], record[key])
            yield family


def registry(*collectors: Collector, process: bool = True) -> CollectorRegistry:
    """A registry of ``collectors`` (plus the process, platform and GC collectors
    with ``process``), separate from prometheus_client's global one."""
    reg = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        reg.register(collector)
    if process:
        ProcessCollector(registry=reg)
        PlatformCollector(registry=reg)
        GCCollector(registry=reg)
    return reg
