"""The metric families: recording, pre-created series, removal, docs in sync with code."""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from llmmon.metrics import docs, families
from llmmon.metrics.docs import render_docs
from llmmon.metrics.exposition import GZIP_BATCH, gzip_parts
from llmmon.metrics.recorder import Metrics
from llmmon.probe.result import ERROR_REASONS, ProbeResult
from llmmon.samplers import gpu_families as gs
from llmmon.samplers import host as hs

LABELS = ("ep", "openai", "model-a")
L = dict(zip(families.PROBE_LABELS, LABELS, strict=True))


def fresh() -> tuple[Metrics, CollectorRegistry]:
    registry = CollectorRegistry()
    return Metrics(registry), registry


def test_error_counters_exist_at_zero_before_any_probe() -> None:
    """Every reason's counter and every histogram exists at 0 once an endpoint is added."""
    metrics, registry = fresh()
    metrics.add_endpoint(LABELS, "host", [])
    for reason in ERROR_REASONS:
        assert registry.get_sample_value("llmmon_probe_errors_total", {**L, "reason": reason}) == 0
        assert registry.get_sample_value("llmmon_probe_requests_total",
                                         {**L, "outcome": reason}) == 0
    assert registry.get_sample_value("llmmon_probe_time_to_first_token_seconds_count", L) == 0
    assert registry.get_sample_value("llmmon_endpoint_info", {**L, "host": "host"}) == 1
    # a gauge at 0 would claim a failed probe that never ran
    assert registry.get_sample_value("llmmon_probe_success", L) is None


def test_record_successful_probe() -> None:
    """A successful probe feeds every histogram, the token counters and the gauges."""
    metrics, registry = fresh()
    metrics.add_endpoint(LABELS, "host", [])
    result = ProbeResult("ep", "p", status=200, ttft=0.1, e2e=0.5, itl=[0.1, 0.1, 0.2],
                         prompt_tokens=7, output_tokens=5, tokens_from_usage=True,
                         content_chunks=4, phases={"connect": 0.001, "wait": 0.05},
                         finished_unix=1234.5)
    metrics.record_probe(LABELS, result)
    get = registry.get_sample_value
    assert get("llmmon_probe_success", L) == 1
    assert get("llmmon_probe_requests_total", {**L, "outcome": "success"}) == 1
    assert get("llmmon_probe_time_to_first_token_seconds_sum", L) == 0.1
    assert get("llmmon_probe_inter_token_latency_seconds_count", L) == 3
    assert get("llmmon_probe_time_per_output_token_seconds_sum", L) == (0.5 - 0.1) / 4
    assert get("llmmon_probe_output_tokens_per_second_sum", L) == 4 / 0.4
    assert get("llmmon_probe_tokens_per_chunk_sum", L) == 5 / 4
    assert get("llmmon_probe_prompt_tokens_total", L) == 7
    assert get("llmmon_probe_output_tokens_total", L) == 5
    assert get("llmmon_probe_http_phase_seconds", {**L, "phase": "wait"}) == 0.05
    assert get("llmmon_probe_http_phase_seconds", {**L, "phase": "dns"}) is None
    assert get("llmmon_probe_last_success_timestamp_seconds", L) == 1234.5
    assert get("llmmon_probe_http_status_code", L) == 200


def test_record_failed_probe() -> None:
    """A failure counts its reason, zeroes success and leaves the latency histograms alone."""
    metrics, registry = fresh()
    metrics.add_endpoint(LABELS, "host", [])
    metrics.record_probe(LABELS, ProbeResult("ep", "p", error="timeout", e2e=20.0))
    get = registry.get_sample_value
    assert get("llmmon_probe_success", L) == 0
    assert get("llmmon_probe_errors_total", {**L, "reason": "timeout"}) == 1
    assert get("llmmon_probe_requests_total", {**L, "outcome": "timeout"}) == 1
    assert get("llmmon_probe_e2e_latency_seconds_count", L) == 0
    assert get("llmmon_probe_last_success_timestamp_seconds", L) is None


def test_removed_endpoint_leaves_no_series() -> None:
    """An endpoint dropped from the config takes all its series with it."""
    metrics, registry = fresh()
    metrics.add_endpoint(LABELS, "host", [])
    metrics.record_probe(LABELS, ProbeResult("ep", "p", status=200, ttft=0.1, e2e=0.2,
                                             phases={"wait": 0.1}))
    metrics.remove_endpoint(LABELS, "host", [])
    assert b'llm_endpoint="ep"' not in generate_latest(registry)


def test_sampler_snapshots_replace_each_other() -> None:
    """A sampler's new snapshot replaces the old one: vanished series do not linger."""
    metrics, registry = fresh()
    metrics.snapshots.publish("gpu", [(gs.GPU_UP, ("0",), 1.0), (gs.GPU_UP, ("1",), 1.0)])
    assert registry.get_sample_value("llmmon_gpu_up", {"gpu": "1"}) == 1
    metrics.snapshots.publish("gpu", [(gs.GPU_UP, ("0",), 1.0)])
    assert registry.get_sample_value("llmmon_gpu_up", {"gpu": "1"}) is None
    metrics.snapshots.publish("host", [(hs.HOST_CPU_SECONDS, ("user",), 12.5)])
    assert registry.get_sample_value("llmmon_host_cpu_seconds_total", {"mode": "user"}) == 12.5


def test_names_follow_conventions() -> None:
    """Every family has the llmmon_ prefix, counters end in _total, and names are unique."""
    names = [f.name for f in docs.ALL_FAMILIES]
    assert len(names) == len(set(names))
    for family in docs.ALL_FAMILIES:
        assert family.name.startswith("llmmon_")
        assert family.name.endswith("_total") == (family.kind == "counter"), family.name
        assert family.help.strip()


def test_docs_match_code() -> None:
    """docs/metrics.md is regenerated from the declared families (python -m llmmon.metrics.docs)."""
    doc = Path(__file__).parent.parent / "docs" / "metrics.md"
    assert doc.read_text() == render_docs(), "run: python -m llmmon.metrics.docs > docs/metrics.md"


def _samples(families: Iterable[Any]) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    """Every sample but the process's own (its RSS and CPU move between two renders)."""
    return {(s.name, tuple(sorted(s.labels.items())), s.value)
            for family in families for s in family.samples
            if not s.name.startswith(("process_", "python_"))}


def _populated() -> tuple[Metrics, CollectorRegistry]:
    metrics, registry = fresh()
    for i in range(3):
        labels = (f'ep-"{i}"\\\n', "openai", "m")  # label values that need escaping
        metrics.add_endpoint(labels, "host", ["check"])
        metrics.record_probe(labels, ProbeResult(
            "ep", "check", status=200, ttft=0.2 * i, e2e=1.5, itl=[0.02, 0.5, 90.0],
            prompt_tokens=5, output_tokens=4, tokens_from_usage=True, content_chunks=4,
            phases={"wait": 0.1}, check_passed=i % 2 == 0, cost_usd=0.001, finished_unix=1.0))
    metrics.remove_endpoint(("ep-\"1\"\\\n", "openai", "m"), "host", ["check"])
    metrics.snapshots.publish("gpu", [(gs.GPU_UP, ("0",), 1.0)])
    return metrics, registry


def test_cached_exposition_matches_prometheus_client_text() -> None:
    """The cached renderer says exactly what prometheus-client's encoder says, escaping and
    bucket edges included."""
    metrics, registry = _populated()
    ours = text_string_to_metric_families(metrics.exposition(False).decode())
    reference = text_string_to_metric_families(generate_latest(registry).decode())
    assert _samples(ours) == _samples(reference)


def test_cached_exposition_matches_prometheus_client_openmetrics() -> None:
    """The same in OpenMetrics, which the parser checks strictly (types, `_total`, `# EOF`)."""
    metrics, registry = _populated()
    ours = openmetrics_families(metrics.exposition(True).decode())
    reference = openmetrics_families(generate_openmetrics(registry).decode())
    assert _samples(ours) == _samples(reference)


def test_cache_follows_changes() -> None:
    """A child renders again after it changes, and only its own lines change."""
    metrics, _ = fresh()
    labels = ("ep", "openai", "m")
    metrics.add_endpoint(labels, "host", [])
    first = metrics.exposition(False)
    metrics.counter(families.PROBE_ERRORS).labels(*labels, "timeout").inc()
    second = metrics.exposition(False).decode()
    assert first != second.encode()
    assert ('llmmon_probe_errors_total{llm_endpoint="ep",provider="openai",model="m",'
            'reason="timeout"} 1.0') in second


def test_coalesced_chunks_are_flagged() -> None:
    """More tokens than chunks flags the endpoint's ITL as chunk gaps; one per chunk clears it."""
    metrics, registry = fresh()
    labels = LABELS
    metrics.add_endpoint(labels, "host", [])
    common = {"status": 200, "ttft": 0.1, "e2e": 0.5, "tokens_from_usage": True}
    metrics.record_probe(labels, ProbeResult("ep", "p", output_tokens=9, content_chunks=3,
                                             **common))
    assert registry.get_sample_value("llmmon_probe_chunks_coalesced", L) == 1
    metrics.record_probe(labels, ProbeResult("ep", "p", output_tokens=9, content_chunks=9,
                                             **common))
    assert registry.get_sample_value("llmmon_probe_chunks_coalesced", L) == 0


def test_gzip_scrapes_decompress_to_the_exposition() -> None:
    """The fast deflate (ISA-L where it has a wheel) writes a standard gzip stream."""
    body = b"# HELP x y\n" + b"".join(b'x{a="%d"} 1.0\n' % i for i in range(50_000))
    packed = gzip_parts([body])
    assert packed[:2] == b"\x1f\x8b"
    assert gzip.decompress(packed) == body
    assert len(packed) < len(body) / 4  # it compresses, not only frames


@pytest.mark.parametrize("sizes", [[], [10], [GZIP_BATCH - 1, 2], [GZIP_BATCH, GZIP_BATCH, 5]])
def test_gzip_of_parts_is_the_gzip_of_the_whole(sizes: list[int]) -> None:
    """/metrics compressed from its parts, in batches, decompresses to the parts joined."""
    parts = [bytes([65 + i % 26]) * n for i, n in enumerate(sizes)]
    assert gzip.decompress(gzip_parts(parts)) == b"".join(parts)
