"""Sampler readings as Prometheus families. Each sampler tick publishes a complete list of
readings that replaces its previous one, so a GPU or process that vanishes takes its series
with it instead of leaving stale values behind."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from llmmon.metrics.family import Family, Reading


class SnapshotCollector(Collector):
    """Serves the latest complete set of readings of each sampler."""

    def __init__(self, families: Iterable[Family] = ()) -> None:
        self._families = tuple(families)  # what describe() announces
        self._snapshots: dict[str, list[Reading]] = {}
        self._lock = threading.Lock()

    def publish(self, sampler: str, readings: list[Reading]) -> None:
        with self._lock:
            self._snapshots[sampler] = readings

    def describe(self) -> Iterable[Metric]:
        return [_empty(f) for f in self._families]

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            readings = [r for snapshot in self._snapshots.values() for r in snapshot]
        families: dict[Family, Metric] = {}
        for family, labels, value in readings:
            metric = families.get(family)
            if metric is None:
                metric = families[family] = _empty(family)
            metric.add_metric(labels, value)  # type: ignore[attr-defined]
        return iter(families.values())


def _empty(family: Family) -> GaugeMetricFamily | CounterMetricFamily:
    cls = CounterMetricFamily if family.kind == "counter" else GaugeMetricFamily
    return cls(family.name, family.help, labels=family.labels)
