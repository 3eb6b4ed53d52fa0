"""Every metric family llmmon exports is declared here, and only here.

Probe and self-monitoring families are prometheus-client objects on an injected registry.
Sampler families are served from snapshots: each sampler tick publishes a complete list
of readings that replaces its previous one, so a GPU or process that vanishes takes its
series with it instead of leaving stale values behind.
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import Collector

from llmmon import __version__
from llmmon.exposition import FamiliesCollector, LiveFamily

if TYPE_CHECKING:
    from llmmon.load import LoadResult
    from llmmon.result import ProbeResult

Kind = Literal["counter", "gauge", "histogram"]

# Bucket bounds copied from vLLM's server-side histograms (vllm/v1/metrics) so that client
# and server views of the same model overlay on one dashboard panel.
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
                2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0,
               2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0,
               50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)
# Decode speed of one request: from CPU-served small models (a few tokens/s) to
# speculative decoding on large GPUs (thousands).
TOKENS_PER_SECOND_BUCKETS = (1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500,
                             1000, 2000, 5000)
# 1 is the normal case; more means a server or proxy coalesces tokens into one chunk.
TOKENS_PER_CHUNK_BUCKETS = (1, 1.5, 2, 3, 4, 6, 8, 16, 32, 64)

PROBE_LABELS = ("endpoint", "provider", "model")
ERROR_REASONS = ("timeout", "connect", "http_4xx", "rate_limited", "http_5xx", "protocol",
                 "too_large", "check_failed")
HTTP_PHASES = ("dns", "connect", "tls", "send", "wait")
SKIP_REASONS = ("budget", "retry_after")
CHECK_RESULTS = ("pass", "fail")
RATELIMIT_KINDS = ("requests", "tokens", "input_tokens", "output_tokens")
# `quantile` is reserved for summaries; the load probe's TTFT percentiles are plain gauges.
LOAD_PERCENTILES = ("p50", "p99")

_SCHEDULE = "Measured by llmmon's synthetic probes on its own schedule, not from user traffic."


@dataclass(frozen=True)
class Family:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    group: str = "self"


def _probe(name: str, kind: Kind, help: str, extra: tuple[str, ...] = (),
           buckets: tuple[float, ...] = ()) -> Family:
    return Family(name, kind, f"{help} {_SCHEDULE}", PROBE_LABELS + extra, buckets, "probe")


# --- probe families ----------------------------------------------------------------------
PROBE_SUCCESS = _probe("llmmon_probe_success", "gauge", "1 if the last probe succeeded, else 0.")
PROBE_REQUESTS = _probe("llmmon_probe_requests_total", "counter",
                        "Probes run, by outcome (success or an error reason).", ("outcome",))
PROBE_ERRORS = _probe("llmmon_probe_errors_total", "counter", "Failed probes by bounded reason.",
                      ("reason",))
PROBE_TTFT = _probe("llmmon_probe_time_to_first_token_seconds", "histogram",
                    "From the request's last byte sent to the first content token received.",
                    buckets=TTFT_BUCKETS)
PROBE_ITL = _probe("llmmon_probe_inter_token_latency_seconds", "histogram",
                   "Every gap between consecutive streamed content chunks.", buckets=ITL_BUCKETS)
PROBE_TPOT = _probe("llmmon_probe_time_per_output_token_seconds", "histogram",
                    "Per probe, (e2e - ttft) / (output tokens - 1), as vLLM defines TPOT.",
                    buckets=ITL_BUCKETS)
PROBE_TOKENS_PER_CHUNK = _probe(
    "llmmon_probe_tokens_per_chunk", "histogram",
    "Per probe, output tokens divided by streamed content chunks; above 1 the server or a "
    "proxy coalesces tokens and chunk gaps are not token gaps.", buckets=TOKENS_PER_CHUNK_BUCKETS)
PROBE_COALESCED = _probe("llmmon_probe_chunks_coalesced", "gauge",
                         "1 when the last streamed probe averaged more than one token per chunk: "
                         "its inter-token latency observations are chunk gaps, not token gaps.")
PROBE_E2E = _probe("llmmon_probe_e2e_latency_seconds", "histogram",
                   "From the start of the request to the end of the response.",
                   buckets=E2E_BUCKETS)
PROBE_TOKENS_PER_SECOND = _probe("llmmon_probe_output_tokens_per_second", "histogram",
                                 "Per probe decode speed: (output tokens - 1) / (e2e - ttft).",
                                 buckets=TOKENS_PER_SECOND_BUCKETS)
PROBE_PROMPT_TOKENS = _probe("llmmon_probe_prompt_tokens_total", "counter",
                             "Prompt tokens sent, from the server's usage when reported.")
PROBE_OUTPUT_TOKENS = _probe("llmmon_probe_output_tokens_total", "counter",
                             "Output tokens received, from usage when reported, else counted.")
PROBE_PHASE = _probe("llmmon_probe_http_phase_seconds", "gauge",
                     "Duration of each HTTP phase of the last probe (0 when a pooled "
                     "connection was reused).", ("phase",))
PROBE_STATUS = _probe("llmmon_probe_http_status_code", "gauge",
                      "HTTP status of the last probe's response (0 when none arrived).")
PROBE_LAST_SUCCESS = _probe("llmmon_probe_last_success_timestamp_seconds", "gauge",
                            "Unix time of the last successful probe.")
PROBE_TTF_REASONING = _probe("llmmon_probe_time_to_first_reasoning_token_seconds", "histogram",
                             "Reasoning models only: to the first thinking token.",
                             buckets=TTFT_BUCKETS)
PROBE_TTF_ANSWER = _probe("llmmon_probe_time_to_first_answer_token_seconds", "histogram",
                          "Reasoning models only: to the first token of the answer proper.",
                          buckets=TTFT_BUCKETS)
PROBE_CHECKS = _probe("llmmon_probe_checks_total", "counter",
                      "Answer checks against the prompt's expectation.", ("prompt", "result"))
PROBE_COST = _probe("llmmon_probe_cost_usd_total", "counter",
                    "What the probes cost, from the configured prices per million tokens.")
PROBE_SKIPPED = _probe("llmmon_probe_skipped_total", "counter",
                       "Probes not sent: the daily budget is spent, or the server's Retry-After "
                       "has not passed.", ("reason",))
PROBE_RATELIMIT = _probe("llmmon_probe_ratelimit_remaining", "gauge",
                         "Remaining rate limit the server reported on the last probe.",
                         ("kind",))
PROBE_RETRY_AFTER = _probe("llmmon_probe_retry_after_seconds", "gauge",
                           "Retry-After of the last rate-limited probe (capped at an hour).")
BUDGET_USD = _probe("llmmon_probe_budget_daily_usd", "gauge", "Configured daily cost budget.")
BUDGET_TOKENS = _probe("llmmon_probe_budget_daily_tokens", "gauge",
                       "Configured daily token budget.")
LOAD_RPS = _probe("llmmon_load_requests_per_second", "gauge",
                  "Last load probe: successful requests per second of its wall time.")
LOAD_TPS = _probe("llmmon_load_output_tokens_per_second", "gauge",
                  "Last load probe: output tokens per second of its wall time, all streams.")
LOAD_CONCURRENCY = _probe("llmmon_load_concurrency", "gauge",
                          "Last load probe: concurrent requests it kept in flight.")
LOAD_ERRORS = _probe("llmmon_load_error_ratio", "gauge",
                     "Last load probe: share of its requests that failed.")
LOAD_TTFT = _probe("llmmon_load_time_to_first_token_seconds", "gauge",
                   "Last load probe: TTFT percentiles across its requests.", ("percentile",))
LOAD_DURATION = _probe("llmmon_load_duration_seconds", "gauge",
                       "Last load probe: wall time of the whole burst.")
LOAD_LAST = _probe("llmmon_load_last_run_timestamp_seconds", "gauge",
                   "Unix time the last load probe finished.")
ENDPOINT_INFO = Family("llmmon_endpoint_info", "gauge",
                       "Configured endpoints, always 1; identity in labels.",
                       (*PROBE_LABELS, "host"), group="probe")

# --- self-monitoring ---------------------------------------------------------------------
BUILD_INFO = Family("llmmon_build_info", "gauge", "Always 1; llmmon's version in labels.",
                    ("version", "python"))
SAMPLER_SUCCESS = Family("llmmon_sampler_success", "gauge",
                         "1 if the sampler's last run succeeded (no data is not a failure).",
                         ("sampler",))
SAMPLER_DURATION = Family("llmmon_sampler_duration_seconds", "gauge",
                          "Wall time of the sampler's last run.", ("sampler",))
MISSED_RUNS = Family("llmmon_scheduler_missed_runs_total", "counter",
                     "Scheduled runs skipped because the previous run of the job was still "
                     "going, or started too late.", ("task",))
JOB_ERRORS = Family("llmmon_scheduler_job_errors_total", "counter",
                    "Job runs that raised or hit their hard deadline (a bug or a hang, "
                    "never an endpoint error).", ("task",))
ASYNC_TASKS = Family("llmmon_asyncio_tasks", "gauge",
                     "asyncio tasks alive when /metrics was served (a leak grows this).")
THREADS = Family("llmmon_threads", "gauge", "Python threads alive when /metrics was served.")
RELOAD_OK = Family("llmmon_config_last_reload_successful", "gauge",
                   "1 if the last configuration load succeeded.")
RELOAD_TIME = Family("llmmon_config_last_reload_timestamp_seconds", "gauge",
                     "Unix time of the last configuration load attempt.")

# --- host sampler ------------------------------------------------------------------------
HOST_CPU_RATIO = Family("llmmon_host_cpu_utilization_ratio", "gauge",
                        "Share of all CPUs busy since the previous sample (0..1).", group="host")
HOST_CPU_SECONDS = Family("llmmon_host_cpu_seconds_total", "counter",
                          "CPU time spent in each mode, all CPUs summed.", ("mode",), group="host")
HOST_LOAD1 = Family("llmmon_host_load1", "gauge", "1-minute load average.", group="host")
HOST_LOAD5 = Family("llmmon_host_load5", "gauge", "5-minute load average.", group="host")
HOST_LOAD15 = Family("llmmon_host_load15", "gauge", "15-minute load average.", group="host")
HOST_MEM_TOTAL = Family("llmmon_host_memory_total_bytes", "gauge", "Physical memory.",
                        group="host")
HOST_MEM_AVAILABLE = Family("llmmon_host_memory_available_bytes", "gauge",
                            "Memory available to new work without swapping.", group="host")
HOST_MEM_USED = Family("llmmon_host_memory_used_bytes", "gauge", "Memory in use (total - "
                       "available).", group="host")
HOST_SWAP_TOTAL = Family("llmmon_host_swap_total_bytes", "gauge", "Swap space.", group="host")
HOST_SWAP_USED = Family("llmmon_host_swap_used_bytes", "gauge", "Swap in use.", group="host")

_MP, _DEV, _IF = ("mountpoint",), ("device",), ("interface",)


def _host(name: str, kind: Kind, help: str, labels: tuple[str, ...] = ()) -> Family:
    return Family(name, kind, help, labels, group="host")


HOST_DISK_TOTAL = _host("llmmon_host_disk_total_bytes", "gauge", "Filesystem size.", _MP)
HOST_DISK_USED = _host("llmmon_host_disk_used_bytes", "gauge", "Filesystem space in use.", _MP)
HOST_DISK_AVAIL = _host("llmmon_host_disk_avail_bytes", "gauge",
                        "Filesystem space available to unprivileged users.", _MP)
HOST_DISK_READ = _host("llmmon_host_disk_read_bytes_total", "counter", "Bytes read.", _DEV)
HOST_DISK_WRITTEN = _host("llmmon_host_disk_written_bytes_total", "counter", "Bytes written.",
                          _DEV)
HOST_DISK_READS = _host("llmmon_host_disk_reads_completed_total", "counter",
                        "Read operations completed.", _DEV)
HOST_DISK_WRITES = _host("llmmon_host_disk_writes_completed_total", "counter",
                         "Write operations completed.", _DEV)
HOST_NET_RX = _host("llmmon_host_network_receive_bytes_total", "counter", "Bytes received.", _IF)
HOST_NET_TX = _host("llmmon_host_network_transmit_bytes_total", "counter", "Bytes sent.", _IF)
HOST_NET_RX_PACKETS = _host("llmmon_host_network_receive_packets_total", "counter",
                            "Packets received.", _IF)
HOST_NET_TX_PACKETS = _host("llmmon_host_network_transmit_packets_total", "counter",
                            "Packets sent.", _IF)
HOST_NET_RX_ERRORS = _host("llmmon_host_network_receive_errors_total", "counter",
                           "Receive errors.", _IF)
HOST_NET_TX_ERRORS = _host("llmmon_host_network_transmit_errors_total", "counter",
                           "Transmit errors.", _IF)
HOST_NET_RX_DROPS = _host("llmmon_host_network_receive_drops_total", "counter",
                          "Received packets dropped.", _IF)
HOST_NET_TX_DROPS = _host("llmmon_host_network_transmit_drops_total", "counter",
                          "Outgoing packets dropped.", _IF)
CONTAINER_CPU_LIMIT = _host("llmmon_container_cpu_limit_cores", "gauge",
                            "The cgroup's CPU quota in cores (absent when unlimited).")
CONTAINER_CPU_USAGE = _host("llmmon_container_cpu_usage_seconds_total", "counter",
                            "CPU time used by the cgroup.")
CONTAINER_CPU_PERIODS = _host("llmmon_container_cpu_periods_total", "counter",
                              "CFS enforcement periods elapsed.")
CONTAINER_CPU_THROTTLED_PERIODS = _host("llmmon_container_cpu_throttled_periods_total",
                                        "counter", "CFS periods in which the cgroup was "
                                        "throttled.")
CONTAINER_CPU_THROTTLED = _host("llmmon_container_cpu_throttled_seconds_total", "counter",
                                "Time the cgroup spent throttled.")
CONTAINER_MEM_LIMIT = _host("llmmon_container_memory_limit_bytes", "gauge",
                            "The cgroup's memory limit (absent when unlimited).")
CONTAINER_MEM_USAGE = _host("llmmon_container_memory_usage_bytes", "gauge",
                            "Memory charged to the cgroup.")
CONTAINER_OOM = _host("llmmon_container_memory_oom_kills_total", "counter",
                      "Processes of the cgroup killed by the OOM killer.")

# --- GPU sampler -------------------------------------------------------------------------
_GPU = ("gpu", "uuid")
GPU_UP = Family("llmmon_gpu_up", "gauge", "1 if NVML answers for this GPU, 0 if it is lost.",
                ("gpu",), group="gpu")
GPU_INFO = Family("llmmon_gpu_info", "gauge", "Always 1; GPU identity in labels.",
                  (*_GPU, "name", "driver", "cuda"), group="gpu")
GPU_UTIL = Family("llmmon_gpu_utilization_ratio", "gauge",
                  "Share of the last sample period a kernel ran (0..1).", _GPU, group="gpu")
GPU_MEM_UTIL = Family("llmmon_gpu_memory_utilization_ratio", "gauge",
                      "Share of the last sample period device memory was read or written.",
                      _GPU, group="gpu")
GPU_MEM_USED = Family("llmmon_gpu_memory_used_bytes", "gauge", "Device memory in use.", _GPU,
                      group="gpu")
GPU_MEM_TOTAL = Family("llmmon_gpu_memory_total_bytes", "gauge", "Device memory.", _GPU,
                       group="gpu")
GPU_TEMP = Family("llmmon_gpu_temperature_celsius", "gauge", "GPU core temperature.", _GPU,
                  group="gpu")
GPU_POWER = Family("llmmon_gpu_power_watts", "gauge", "Power draw.", _GPU, group="gpu")
GPU_POWER_LIMIT = Family("llmmon_gpu_power_limit_watts", "gauge", "Enforced power limit.",
                         _GPU, group="gpu")

GPU_ENERGY = Family("llmmon_gpu_energy_joules_total", "counter",
                    "Energy used since the driver loaded.", _GPU, group="gpu")
GPU_CLOCK = Family("llmmon_gpu_clock_hertz", "gauge", "Current clock, by domain.",
                   _GPU + ("clock",), group="gpu")
GPU_FAN = Family("llmmon_gpu_fan_speed_ratio", "gauge", "Fan speed as a share of its maximum.",
                 _GPU, group="gpu")
GPU_THROTTLE = Family("llmmon_gpu_throttle_active", "gauge",
                      "1 while the clocks are held down for this reason.",
                      _GPU + ("reason",), group="gpu")
GPU_ECC = Family("llmmon_gpu_ecc_errors_total", "counter",
                 "Memory ECC errors since the driver loaded.", _GPU + ("type",), group="gpu")
GPU_PCIE_RX = Family("llmmon_gpu_pcie_rx_bytes_per_second", "gauge",
                     "PCIe receive throughput over NVML's last 20 ms window.", _GPU, group="gpu")
GPU_PCIE_TX = Family("llmmon_gpu_pcie_tx_bytes_per_second", "gauge",
                     "PCIe transmit throughput over NVML's last 20 ms window.", _GPU, group="gpu")
GPU_MIG = Family("llmmon_gpu_mig_mode_enabled", "gauge", "1 if MIG mode is on.", _GPU,
                 group="gpu")
GPU_PROC_MEM = Family("llmmon_gpu_process_memory_used_bytes", "gauge",
                      "Device memory used by each process on the GPU.",
                      _GPU + ("pid", "process"), group="gpu")

# --- process sampler ---------------------------------------------------------------------
PROC_UP = Family("llmmon_target_process_up", "gauge", "1 if a process matches the target.",
                 ("target",), group="process")
PROC_CPU = Family("llmmon_target_process_cpu_seconds_total", "counter",
                  "User and system CPU time of the target process.", ("target",),
                  group="process")
PROC_RSS = Family("llmmon_target_process_resident_memory_bytes", "gauge",
                  "Resident memory of the target process.", ("target",), group="process")
PROC_THREADS = Family("llmmon_target_process_threads", "gauge", "Threads of the target process.",
                      ("target",), group="process")
PROC_GPU_MEM = Family("llmmon_target_process_gpu_memory_bytes", "gauge",
                      "Device memory used by the target process, all GPUs summed.", ("target",),
                      group="process")
PROC_FDS = Family("llmmon_target_process_open_fds", "gauge",
                  "Open file descriptors of the target process.", ("target",), group="process")

# Only reasoning models feed these; pre-creating them for every endpoint would double the
# histogram series of endpoints that never will.
_ON_DEMAND = (PROBE_TTF_REASONING, PROBE_TTF_ANSWER)

ALL_FAMILIES: tuple[Family, ...] = tuple(v for v in dict(globals()).values()
                                         if isinstance(v, Family))
SAMPLED_FAMILIES = tuple(f for f in ALL_FAMILIES if f.group in ("host", "gpu", "process"))

Reading = tuple[Family, tuple[str, ...], float]
"""One sampled value: its family, its label values (in the family's label order), the value."""


class SnapshotCollector(Collector):
    """Serves the latest complete set of readings of each sampler."""

    def __init__(self) -> None:
        self._snapshots: dict[str, list[Reading]] = {}
        self._lock = threading.Lock()

    def publish(self, sampler: str, readings: list[Reading]) -> None:
        with self._lock:
            self._snapshots[sampler] = readings

    def describe(self) -> Iterable[Metric]:
        return [_empty(f) for f in SAMPLED_FAMILIES]

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


class Metrics:
    """The live metrics of one daemon.

    ``registry`` (injected) holds everything, for tests and reference encoders; /metrics is
    rendered by ``exposition()``: the live families from their cached lines, then the
    collectors of ``base`` (samplers' snapshots, process_*, python_*) by prometheus-client.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.base = CollectorRegistry(auto_describe=True)
        self.snapshots = SnapshotCollector()
        self.base.register(self.snapshots)
        registry.register(self.snapshots)
        # llmmon's own footprint: process_* (RSS, CPU, fds) and python_* families.
        for make in (ProcessCollector, PlatformCollector, GCCollector):
            collector = make(registry=self.base)
            registry.register(collector)
        self._live = {f: LiveFamily(f) for f in ALL_FAMILIES if f not in SAMPLED_FAMILIES}
        registry.register(FamiliesCollector(self._live.values()))
        self.gauge(BUILD_INFO).labels(__version__, platform.python_version()).set(1)

    def gauge(self, family: Family) -> LiveFamily:
        assert family.kind == "gauge"
        return self._live[family]

    def counter(self, family: Family) -> LiveFamily:
        assert family.kind == "counter"
        return self._live[family]

    def histogram(self, family: Family) -> LiveFamily:
        assert family.kind == "histogram"
        return self._live[family]

    def exposition(self, openmetrics: bool) -> bytes:
        """/metrics in the text format, or OpenMetrics (whose `# EOF` the base encoder ends
        with, so llmmon's families come first)."""
        parts = [part for family in self._live.values() for part in family.render(openmetrics)]
        encode = generate_openmetrics if openmetrics else generate_latest
        rest: bytes = encode(self.base)
        return b"".join(parts) + rest

    # --- endpoints -----------------------------------------------------------------------

    def add_endpoint(self, labels: tuple[str, str, str], host: str, checked: list[str]) -> None:
        """Create the endpoint's counters and histograms at zero so rate() works from the start
        (``checked``: the prompts that have an expectation).

        Gauges appear with their first value: a gauge at 0 would claim a measurement."""
        self.gauge(ENDPOINT_INFO).labels(*labels, host).set(1)
        for family in ALL_FAMILIES:
            if family.group != "probe" or family.kind == "gauge" or family in _ON_DEMAND:
                continue
            for extra in _label_values(family, checked):
                self._live[family].labels(*labels, *extra)

    def remove_endpoint(self, labels: tuple[str, str, str], host: str, prompts: list[str]
                        ) -> None:
        """Drop every series of an endpoint that left the configuration."""
        self.gauge(ENDPOINT_INFO).remove(*labels, host)
        for family in ALL_FAMILIES:
            if family.group != "probe" or family is ENDPOINT_INFO:
                continue
            metric = self._live[family]
            for extra in _label_values(family, prompts):
                try:
                    metric.remove(*labels, *extra)
                except KeyError:
                    pass  # never created

    def set_budget(self, labels: tuple[str, str, str], usd: float | None, tokens: int | None
                   ) -> None:
        if usd is not None:
            self.gauge(BUDGET_USD).labels(*labels).set(usd)
        if tokens is not None:
            self.gauge(BUDGET_TOKENS).labels(*labels).set(tokens)

    def record_skip(self, labels: tuple[str, str, str], reason: str) -> None:
        self.counter(PROBE_SKIPPED).labels(*labels, reason).inc()

    def record_load(self, labels: tuple[str, str, str], load: LoadResult) -> None:
        self.gauge(LOAD_RPS).labels(*labels).set(load.requests_per_second)
        self.gauge(LOAD_TPS).labels(*labels).set(load.output_tokens_per_second)
        self.gauge(LOAD_CONCURRENCY).labels(*labels).set(load.concurrency)
        self.gauge(LOAD_ERRORS).labels(*labels).set(load.error_ratio)
        self.gauge(LOAD_DURATION).labels(*labels).set(load.duration)
        self.gauge(LOAD_LAST).labels(*labels).set(load.finished_unix)
        for percentile, value in zip(LOAD_PERCENTILES, load.ttft_quantiles, strict=True):
            if value is not None:
                self.gauge(LOAD_TTFT).labels(*labels, percentile).set(value)

    def record_probe(self, labels: tuple[str, str, str], result: ProbeResult) -> None:
        self.counter(PROBE_REQUESTS).labels(*labels, result.error or "success").inc()
        self.gauge(PROBE_SUCCESS).labels(*labels).set(1 if result.ok else 0)
        self.gauge(PROBE_STATUS).labels(*labels).set(result.status or 0)
        for phase, seconds in result.phases.items():
            self.gauge(PROBE_PHASE).labels(*labels, phase).set(seconds)
        if result.error:
            self.counter(PROBE_ERRORS).labels(*labels, result.error).inc()
        else:
            self.gauge(PROBE_LAST_SUCCESS).labels(*labels).set(result.finished_unix)
        if result.check_passed is not None:
            outcome = "pass" if result.check_passed else "fail"
            self.counter(PROBE_CHECKS).labels(*labels, result.prompt, outcome).inc()
        if result.cost_usd:
            self.counter(PROBE_COST).labels(*labels).inc(result.cost_usd)
        for kind, remaining in result.ratelimit_remaining.items():
            self.gauge(PROBE_RATELIMIT).labels(*labels, kind).set(remaining)
        if result.retry_after is not None:
            self.gauge(PROBE_RETRY_AFTER).labels(*labels).set(result.retry_after)
        if result.prompt_tokens:
            self.counter(PROBE_PROMPT_TOKENS).labels(*labels).inc(result.prompt_tokens)
        if result.output_tokens:
            self.counter(PROBE_OUTPUT_TOKENS).labels(*labels).inc(result.output_tokens)
        self._observe(PROBE_TTFT, labels, result.ttft)
        if result.time_to_first_reasoning is not None:
            self._observe(PROBE_TTF_REASONING, labels, result.time_to_first_reasoning)
            self._observe(PROBE_TTF_ANSWER, labels, result.time_to_first_answer)
        self._observe(PROBE_E2E, labels, result.e2e if result.ok else None)
        self._observe(PROBE_TPOT, labels, result.tpot)
        self._observe(PROBE_TOKENS_PER_SECOND, labels, result.tokens_per_second)
        self._observe(PROBE_TOKENS_PER_CHUNK, labels, result.tokens_per_chunk)
        if result.tokens_per_chunk is not None:
            self.gauge(PROBE_COALESCED).labels(*labels).set(result.tokens_per_chunk > 1.0)
        itl = self.histogram(PROBE_ITL).labels(*labels)
        for gap in result.itl:
            itl.observe(gap)

    def _observe(self, family: Family, labels: tuple[str, ...], value: float | None) -> None:
        if value is not None:
            self.histogram(family).labels(*labels).observe(value)


def _label_values(family: Family, prompts: list[str]) -> list[tuple[str, ...]]:
    """The values of a probe family's labels beyond endpoint/provider/model."""
    extra = family.labels[len(PROBE_LABELS):]
    if family is PROBE_SKIPPED:
        return [(r,) for r in SKIP_REASONS]
    if family is PROBE_CHECKS:
        return [(p, r) for p in prompts for r in CHECK_RESULTS]
    fixed = {("reason",): ERROR_REASONS, ("phase",): HTTP_PHASES, ("kind",): RATELIMIT_KINDS,
             ("percentile",): LOAD_PERCENTILES, ("outcome",): ("success", *ERROR_REASONS)}
    if extra in fixed:
        return [(v,) for v in fixed[extra]]
    return [()]


def render_docs() -> str:
    """docs/metrics.md, generated from the families above (a test keeps them in sync)."""
    lines = [
        "# Metrics",
        "",
        "Generated from `llmmon/metrics.py` by `python -m llmmon.metrics > docs/metrics.md`; "
        "do not edit by hand.",
        "",
    ]
    titles = {"probe": "Probes", "host": "Host sampler", "gpu": "GPU sampler",
              "process": "Process sampler", "self": "llmmon itself"}
    for group, title in titles.items():
        lines += [f"## {title}", "", "| name | type | labels | meaning |", "|---|---|---|---|"]
        for f in ALL_FAMILIES:
            if f.group == group:
                labels = ", ".join(f"`{label}`" for label in f.labels) or "—"
                meaning = f.help.replace(_SCHEDULE, "").strip()
                lines.append(f"| `{f.name}` | {f.kind} | {labels} | {meaning} |")
        lines.append("")
    lines += [
        "Probe values are " + _SCHEDULE[0].lower() + _SCHEDULE[1:],
        "",
        "Label values: `reason` ∈ " + ", ".join(f"`{r}`" for r in ERROR_REASONS)
        + "; `outcome` ∈ `success` or a reason; `phase` ∈ "
        + ", ".join(f"`{p}`" for p in HTTP_PHASES) + "; skipped `reason` ∈ "
        + ", ".join(f"`{r}`" for r in SKIP_REASONS) + "; `kind` ∈ "
        + ", ".join(f"`{k}`" for k in RATELIMIT_KINDS) + "; `prompt` is a configured "
        "prompt name; `result` ∈ `pass`, `fail`.",
        "",
        "Histogram buckets (seconds unless noted): TTFT " + _fmt(TTFT_BUCKETS)
        + "; ITL and TPOT " + _fmt(ITL_BUCKETS) + "; E2E " + _fmt(E2E_BUCKETS)
        + " (vLLM's own bounds); tokens/s " + _fmt(TOKENS_PER_SECOND_BUCKETS)
        + "; tokens per chunk " + _fmt(TOKENS_PER_CHUNK_BUCKETS) + ".",
        "",
        "The standard `process_*` and `python_*` families of prometheus-client describe the "
        "llmmon process itself.",
        "",
    ]
    return "\n".join(lines)


def _fmt(buckets: tuple[float, ...]) -> str:
    return ", ".join(f"{b:g}" for b in buckets)


if __name__ == "__main__":
    print(render_docs(), end="")
