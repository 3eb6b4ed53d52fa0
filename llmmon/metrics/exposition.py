"""llmmon's own metric primitives, built for a cheap /metrics.

prometheus-client formats every sample on every scrape, about 1 ms per endpoint's worth of
probe series. Here each labelled child keeps its rendered lines (text format and
OpenMetrics) and renders again only after it changed, so a scrape joins cached bytes: probes
change one endpoint's children at a time. The figures are in docs/design.md ("llmmon renders
its own families"), measured by ``benchmarks/footprint.py --only-render``.

``FamiliesCollector`` also offers the same data to a prometheus-client registry, so
``registry.get_sample_value`` and the reference encoders see exactly what /metrics serves.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString as _go_float

from llmmon.metrics.family import Family


def _float(value: float) -> str:
    """Go's float formatting, as Prometheus writes and reads it ("+Inf", "1e+06", "0.5")."""
    text: str = _go_float(value)  # type: ignore[no-untyped-call]
    return text


def _escape_label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _escape_help(text: str, openmetrics: bool) -> str:
    text = text.replace("\\", r"\\").replace("\n", r"\n")
    return text.replace('"', r"\"") if openmetrics else text


try:  # Intel's ISA-L deflate: level 1 is 6.6x zlib's at the same size (2.5 MiB of /metrics
    # at 100 endpoints: 0.70 ms against 4.61 ms, 83 KiB against 80 KiB)
    from isal import isal_zlib as _zlib
except ImportError:  # no wheel for this machine: zlib's
    import zlib as _zlib  # type: ignore[no-redef]

GZIP_BATCH = 1 << 18  # bytes of exposition handed to the compressor at a time


def gzip_parts(parts: Iterable[bytes]) -> bytes:
    """/metrics compressed for ``Accept-Encoding: gzip`` from its parts, never joined whole:
    at 1,000 endpoints the whole is 25 MiB, and allocating it (its pages first touched) cost
    more than compressing it. Batches of 256 KiB keep the compressor's calls few."""
    compressor = _zlib.compressobj(1, _zlib.DEFLATED, 31)  # 31: a gzip header and trailer
    out, batch, size = [], [], 0
    for part in parts:
        batch.append(part)
        size += len(part)
        if size >= GZIP_BATCH:
            out.append(compressor.compress(b"".join(batch)))
            batch, size = [], 0
    out.append(compressor.compress(b"".join(batch)))
    out.append(compressor.flush())
    return b"".join(out)


class _Child:
    """One labelled series (or, for histograms, one labelled set of series)."""

    __slots__ = ("_cache", "_prefix", "count", "counts", "sum", "value")

    def __init__(self, prefix: str, buckets: int) -> None:
        self._prefix = prefix  # 'llm_endpoint="a",provider="b"' (no braces)
        self._cache: dict[bool, bytes] = {}
        self.value = 0.0
        self.counts = [0] * buckets  # per bucket, not cumulative; the last is +Inf
        self.sum = 0.0
        self.count = 0


class LiveFamily:
    """A labelled counter, gauge or histogram, e.g. ``family.labels("a", "b").inc()``."""

    def __init__(self, spec: Family) -> None:
        self.spec = spec
        self.bounds = (*spec.buckets, float("inf")) if spec.kind == "histogram" else ()
        self._le = [_float(b) for b in self.bounds]
        self._children: dict[tuple[str, ...], _Child] = {}
        self._lock = threading.Lock()
        self._headers: dict[bool, bytes] = {}

    def labels(self, *values: str) -> _Handle:
        if len(values) != len(self.spec.labels):
            raise ValueError(f"{self.spec.name} takes labels {self.spec.labels}")
        key = tuple(str(v) for v in values)
        with self._lock:
            child = self._children.get(key)
            if child is None:
                prefix = ",".join(f'{n}="{_escape_label(v)}"'
                                  for n, v in zip(self.spec.labels, key, strict=True))
                child = self._children[key] = _Child(prefix, len(self.bounds))
        return _Handle(self, child)

    # An unlabelled family is its own single child.
    def set(self, value: float) -> None:
        self.labels().set(value)

    def inc(self, amount: float = 1.0) -> None:
        self.labels().inc(amount)

    def remove(self, *values: str) -> None:
        with self._lock:
            del self._children[tuple(str(v) for v in values)]

    def remove_matching(self, *prefix: str) -> None:
        """Drop every series whose first label values are ``prefix``."""
        n = len(prefix)
        with self._lock:
            for key in [k for k in self._children if k[:n] == prefix]:
                del self._children[key]

    def _change(self, child: _Child, update: Any) -> None:
        with self._lock:
            update(child)
            child._cache.clear()

    def samples(self) -> list[tuple[tuple[str, ...], _Child]]:
        with self._lock:
            return list(self._children.items())

    def render(self, openmetrics: bool) -> list[bytes]:
        header = self._headers.get(openmetrics)
        if header is None:
            header = self._headers[openmetrics] = self._header(openmetrics)
        parts = [header]
        with self._lock:
            for child in self._children.values():
                text = child._cache.get(openmetrics)
                if text is None:
                    text = child._cache[openmetrics] = self._lines(child)
                parts.append(text)
        return parts

    def _header(self, openmetrics: bool) -> bytes:
        spec = self.spec
        name = spec.name.removesuffix("_total") if openmetrics and spec.kind == "counter" \
            else spec.name
        return (f"# HELP {name} {_escape_help(spec.help, openmetrics)}\n"
                f"# TYPE {name} {spec.kind}\n").encode()

    def _lines(self, child: _Child) -> bytes:
        name, labels = self.spec.name, child._prefix
        braces = f"{{{labels}}}" if labels else ""
        if self.spec.kind != "histogram":
            return f"{name}{braces} {_float(child.value)}\n".encode()
        sep = "," if labels else ""
        out, cumulative = [], 0
        for le, n in zip(self._le, child.counts, strict=True):
            cumulative += n
            out.append(f'{name}_bucket{{{labels}{sep}le="{le}"}} {cumulative}.0\n')
        out.append(f"{name}_count{braces} {child.count}.0\n")
        out.append(f"{name}_sum{braces} {_float(child.sum)}\n")
        return "".join(out).encode()


class _Handle:
    """What ``labels()`` returns: the child, with the family's lock around every change."""

    __slots__ = ("_child", "_family")

    def __init__(self, family: LiveFamily, child: _Child) -> None:
        self._family, self._child = family, child

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("counters only go up")

        def update(c: _Child) -> None:
            c.value += amount

        self._family._change(self._child, update)

    def set(self, value: float) -> None:
        def update(c: _Child) -> None:
            c.value = float(value)

        self._family._change(self._child, update)

    def observe(self, value: float) -> None:
        bounds = self._family.bounds

        def update(c: _Child) -> None:
            for i, bound in enumerate(bounds):
                if value <= bound:
                    c.counts[i] += 1
                    break
            c.sum += value
            c.count += 1

        self._family._change(self._child, update)


class FamiliesCollector(Collector):
    """The live families as prometheus-client metrics, for registries and the test suite."""

    def __init__(self, families: Iterable[LiveFamily]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        for family in self.families:
            spec = family.spec
            metric: Any
            if spec.kind == "counter":
                metric = CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
            elif spec.kind == "gauge":
                metric = GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)
            else:
                metric = HistogramMetricFamily(spec.name, spec.help, labels=spec.labels)
            for values, child in family.samples():
                if spec.kind == "histogram":
                    cumulative, buckets = 0, []
                    for le, n in zip(family._le, child.counts, strict=True):
                        cumulative += n
                        buckets.append((le, float(cumulative)))
                    metric.add_metric(list(values), buckets, child.sum)
                else:
                    metric.add_metric(list(values), child.value)
            yield metric

    def describe(self) -> Iterable[Metric]:
        return self.collect()
