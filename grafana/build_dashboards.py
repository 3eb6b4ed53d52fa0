"""Builds grafana/dashboards/*.json (Grafana's dashboard JSON model) from the panel lists
below, so every query is written once, in PromQL, next to its title and unit.

    python grafana/build_dashboards.py        # rewrite the JSON files
    python grafana/build_dashboards.py --check  # exit 1 if they are out of date (a test runs it)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job=~"$job", instance=~"$instance"'
EP = SEL + ', endpoint=~"$endpoint"'
GPU = SEL + ', gpu=~"$gpu"'
RI = "$__rate_interval"

Target = tuple[str, str]  # (expr, legend)


class Board:
    """Lays panels out left to right, 24 columns wide, rows of equal height."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = self.y = 0
        self.row_height = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append({"type": "row", "title": title, "collapsed": False, "panels": [],
                            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}})
        self.y += 1

    def _newline(self) -> None:
        if self.x:
            self.x, self.y = 0, self.y + self.row_height

    def _place(self, w: int, h: int) -> dict[str, int]:
        if self.x + w > 24:
            self._newline()
        pos = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_height = h
        return pos

    def add(self, kind: str, title: str, targets: list[Target], unit: str, w: int = 8,
            h: int = 8, description: str = "", thresholds: list[tuple[float | None, str]] | None
            = None, **options: Any) -> None:
        steps = [{"color": color, "value": value}
                 for value, color in (thresholds or [(None, "green")])]
        panel: dict[str, Any] = {
            "type": kind, "title": title, "description": description, "datasource": DS,
            "gridPos": self._place(w, h),
            "targets": [{"datasource": DS, "expr": expr, "legendFormat": legend,
                         "refId": chr(ord("A") + i)} for i, (expr, legend) in enumerate(targets)],
            "fieldConfig": {"defaults": {"unit": unit, "thresholds": {"mode": "absolute",
                                                                      "steps": steps}},
                            "overrides": []},
            "options": options,
        }
        if kind == "timeseries":
            panel["fieldConfig"]["defaults"]["custom"] = {
                "drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never",
                "thresholdsStyle": {"mode": "line" if thresholds else "off"}}
        self.panels.append(panel)

    def dashboard(self, uid: str, title: str, description: str,
                  variables: list[dict[str, Any]]) -> dict[str, Any]:
        for i, panel in enumerate(self.panels, 1):
            panel["id"] = i
        return {
            "uid": uid, "title": title, "description": description, "tags": ["llmmon"],
            "timezone": "browser", "schemaVersion": 39, "version": 1, "editable": True,
            "refresh": "30s", "time": {"from": "now-3h", "to": "now"},
            "graphTooltip": 1, "panels": self.panels, "templating": {"list": variables},
            "annotations": {"list": []}, "links": [],
        }


def variable(name: str, query: str, label: str) -> dict[str, Any]:
    return {"name": name, "label": label, "type": "query", "datasource": DS,
            "query": {"query": query, "refId": name}, "definition": query, "refresh": 2,
            "includeAll": True, "multi": True, "allValue": ".*", "sort": 1,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]}}


DATASOURCE = {"name": "datasource", "label": "Data source", "type": "datasource",
              "query": "prometheus", "refresh": 1, "current": {}}
JOB = variable("job", "label_values(llmmon_build_info, job)", "Job")
INSTANCE = variable("instance", 'label_values(llmmon_build_info{job=~"$job"}, instance)',
                    "Instance")


def quantiles(metric: str, by: str = "endpoint") -> list[Target]:
    return [(f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket{{{EP}}}[{RI}])))",
             f"p{round(q * 100)} {{{{{by}}}}}") for q in (0.5, 0.9, 0.99)]


def endpoints() -> dict[str, Any]:
    b = Board()
    b.row("Health")
    b.add("stat", "Last probe", [(f"llmmon_probe_success{{{EP}}}", "{{endpoint}}")], "none",
          w=6, description="1: the last probe succeeded.",
          thresholds=[(None, "red"), (1, "green")], colorMode="background")
    b.add("stat", "Success ratio over the range", [(
        f'sum by (endpoint) (increase(llmmon_probe_requests_total{{{EP}, outcome="success"}}'
        f"[$__range])) / sum by (endpoint) (increase(llmmon_probe_requests_total{{{EP}}}"
        "[$__range]))", "{{endpoint}}")], "percentunit", w=6,
        thresholds=[(None, "red"), (0.95, "orange"), (0.99, "green")])
    b.add("stat", "Age of the last success",
          [(f"time() - llmmon_probe_last_success_timestamp_seconds{{{EP}}}", "{{endpoint}}")],
          "s", w=6, thresholds=[(None, "green"), (300, "orange"), (900, "red")])
    b.add("stat", "HTTP status of the last probe",
          [(f"llmmon_probe_http_status_code{{{EP}}}", "{{endpoint}}")], "none", w=6,
          thresholds=[(None, "green"), (400, "orange"), (500, "red")])
    b.add("timeseries", "Errors by reason",
          [(f"sum by (endpoint, reason) (increase(llmmon_probe_errors_total{{{EP}}}[{RI}]))",
            "{{endpoint}} {{reason}}")], "short", w=12,
          description="Failed probes per interval, by bounded reason.")
    b.add("timeseries", "Skipped probes",
          [(f"sum by (endpoint, reason) (increase(llmmon_probe_skipped_total{{{EP}}}[{RI}]))",
            "{{endpoint}} {{reason}}")], "short", w=12,
          description="Not sent: the daily budget is spent, or the server's Retry-After.")
    b.row("Latency (client side, on llmmon's probe schedule)")
    b.add("timeseries", "Time to first token",
          quantiles("llmmon_probe_time_to_first_token_seconds"), "s", w=12,
          thresholds=[(None, "green"), (2.5, "red")],
          description="From the request's last byte sent to the first token received.")
    b.add("timeseries", "Inter-token latency",
          quantiles("llmmon_probe_inter_token_latency_seconds"), "s", w=12,
          thresholds=[(None, "green"), (0.1, "red")])
    b.add("timeseries", "Time per output token",
          quantiles("llmmon_probe_time_per_output_token_seconds"), "s", w=12)
    b.add("timeseries", "End-to-end latency", quantiles("llmmon_probe_e2e_latency_seconds"),
          "s", w=12)
    b.add("timeseries", "TTFT: llmmon (client) against vLLM (server), p90", [
        (f"histogram_quantile(0.9, sum by (le) (rate(llmmon_probe_time_to_first_token_seconds"
         f"_bucket{{{EP}}}[{RI}])))", "client (llmmon)"),
        (f'histogram_quantile(0.9, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket'
         f"[{RI}])))", "server (vLLM)"),
    ], "s", w=12, description="Same buckets on both sides; the gap is queueing in front of "
          "the engine, the network and proxies. The server line needs vLLM's /metrics scraped.")
    b.add("timeseries", "HTTP phases of the last probe",
          [(f"llmmon_probe_http_phase_seconds{{{EP}}}", "{{endpoint}} {{phase}}")], "s", w=12,
          description="0 for connect and TLS when a pooled connection was reused.")
    b.row("Throughput and tokens")
    b.add("timeseries", "Output tokens per second (per request)",
          quantiles("llmmon_probe_output_tokens_per_second"), "short", w=12)
    b.add("timeseries", "Tokens used by probes", [
        (f"sum by (endpoint) (rate(llmmon_probe_output_tokens_total{{{EP}}}[{RI}]))",
         "output {{endpoint}}"),
        (f"sum by (endpoint) (rate(llmmon_probe_prompt_tokens_total{{{EP}}}[{RI}]))",
         "prompt {{endpoint}}"),
    ], "short", w=12, description="Tokens per second spent by llmmon's own probes.")
    b.add("timeseries", "Tokens per streamed chunk", [
        (f"sum by (endpoint) (rate(llmmon_probe_tokens_per_chunk_sum{{{EP}}}[{RI}])) / "
         f"sum by (endpoint) (rate(llmmon_probe_tokens_per_chunk_count{{{EP}}}[{RI}]))",
         "{{endpoint}}"),
        (f"llmmon_probe_chunks_coalesced{{{EP}}}", "coalesced now {{endpoint}}"),
    ], "short", w=12, thresholds=[(None, "green"), (1.5, "orange")],
        description="Above 1 a server or proxy coalesces tokens: chunk gaps are not token gaps "
        "(\"coalesced now\" is 1 while the last probe was).")
    b.add("timeseries", "Load probe throughput", [
        (f"llmmon_load_requests_per_second{{{EP}}}", "requests/s {{endpoint}}"),
        (f"llmmon_load_output_tokens_per_second{{{EP}}}", "tokens/s {{endpoint}}"),
    ], "short", w=12, description="The last scheduled burst of concurrent requests.")
    b.add("timeseries", "Load probe TTFT and errors", [
        (f"llmmon_load_time_to_first_token_seconds{{{EP}}}", "{{percentile}} {{endpoint}}"),
        (f"llmmon_load_error_ratio{{{EP}}}", "error ratio {{endpoint}}"),
    ], "s", w=12)
    b.add("timeseries", "Rate limit remaining",
          [(f"llmmon_probe_ratelimit_remaining{{{EP}}}", "{{endpoint}} {{kind}}")], "short",
          w=12, description="As the server reported it on the last probe.")
    b.row("Correctness and cost")
    b.add("timeseries", "Answer accuracy by prompt", [(
        f'sum by (endpoint, prompt) (increase(llmmon_probe_checks_total{{{EP}, result="pass"}}'
        f"[1h])) / sum by (endpoint, prompt) (increase(llmmon_probe_checks_total{{{EP}}}[1h]))",
        "{{endpoint}} {{prompt}}")], "percentunit", w=12,
        thresholds=[(None, "red"), (0.8, "green")], description="Share of checks passed, 1 h.")
    b.add("timeseries", "Probe cost per hour",
          [(f"sum by (endpoint) (increase(llmmon_probe_cost_usd_total{{{EP}}}[1h]))",
            "{{endpoint}}")], "currencyUSD", w=6)
    b.add("timeseries", "Probe cost per day against budget", [
        (f"sum by (endpoint) (increase(llmmon_probe_cost_usd_total{{{EP}}}[1d]))",
         "spent {{endpoint}}"),
        (f"max by (endpoint) (llmmon_probe_budget_daily_usd{{{EP}}})", "budget {{endpoint}}"),
    ], "currencyUSD", w=6)
    self_health(b)
    return b.dashboard("llmmon-endpoints", "LLM endpoints",
                       "What llmmon's synthetic probes measure, per endpoint.",
                       [DATASOURCE, JOB, INSTANCE,
                        variable("endpoint", f"label_values(llmmon_endpoint_info{{{SEL}}}, "
                                 "endpoint)", "Endpoint")])


def self_health(b: Board) -> None:
    b.row("llmmon itself")
    b.add("timeseries", "Sampler success", [(f"llmmon_sampler_success{{{SEL}}}",
                                             "{{instance}} {{sampler}}")], "none", w=6)
    b.add("timeseries", "Sampler duration", [(f"llmmon_sampler_duration_seconds{{{SEL}}}",
                                              "{{instance}} {{sampler}}")], "s", w=6)
    b.add("timeseries", "Skipped runs and job errors", [
        (f"sum by (task) (increase(llmmon_scheduler_missed_runs_total{{{SEL}}}[{RI}]))",
         "missed {{task}}"),
        (f"sum by (task) (increase(llmmon_scheduler_job_errors_total{{{SEL}}}[{RI}]))",
         "errors {{task}}"),
    ], "short", w=6)
    b.add("stat", "Config reload", [(f"llmmon_config_last_reload_successful{{{SEL}}}",
                                     "{{instance}}")], "none", w=6,
          thresholds=[(None, "red"), (1, "green")], colorMode="background")
    b.add("timeseries", "llmmon memory and CPU", [
        (f"process_resident_memory_bytes{{{SEL}}}", "RSS {{instance}}"),
    ], "bytes", w=12)
    b.add("timeseries", "llmmon CPU", [
        (f"rate(process_cpu_seconds_total{{{SEL}}}[{RI}])", "{{instance}}")], "percentunit",
        w=12)


def resources() -> dict[str, Any]:
    b = Board()
    b.row("Host and container")
    b.add("timeseries", "CPU busy", [(f"llmmon_host_cpu_utilization_ratio{{{SEL}}}",
                                      "{{instance}}")], "percentunit", w=8,
          thresholds=[(None, "green"), (0.9, "red")])
    b.add("timeseries", "CPU by mode", [(
        f"sum by (mode) (rate(llmmon_host_cpu_seconds_total{{{SEL}, mode!=\"idle\"}}[{RI}]))",
        "{{mode}}")], "short", w=8, description="CPU seconds per second (cores).")
    b.add("timeseries", "Load average", [
        (f"llmmon_host_load1{{{SEL}}}", "1m {{instance}}"),
        (f"llmmon_host_load5{{{SEL}}}", "5m {{instance}}"),
        (f"llmmon_host_load15{{{SEL}}}", "15m {{instance}}")], "short", w=8)
    b.add("timeseries", "Memory", [
        (f"llmmon_host_memory_used_bytes{{{SEL}}}", "used {{instance}}"),
        (f"llmmon_host_memory_available_bytes{{{SEL}}}", "available {{instance}}"),
        (f"llmmon_host_memory_total_bytes{{{SEL}}}", "total {{instance}}"),
        (f"llmmon_host_swap_used_bytes{{{SEL}}}", "swap used {{instance}}")], "bytes", w=8)
    b.add("timeseries", "Container CPU against its limit", [
        (f"rate(llmmon_container_cpu_usage_seconds_total{{{SEL}}}[{RI}])", "used {{instance}}"),
        (f"llmmon_container_cpu_limit_cores{{{SEL}}}", "limit {{instance}}")], "short", w=8,
        description="Cores. No limit line when the cgroup has no quota.")
    b.add("timeseries", "Container CPU throttling", [(
        f"rate(llmmon_container_cpu_throttled_periods_total{{{SEL}}}[{RI}]) / "
        f"rate(llmmon_container_cpu_periods_total{{{SEL}}}[{RI}])", "{{instance}}")],
        "percentunit", w=8, thresholds=[(None, "green"), (0.25, "red")])
    b.add("timeseries", "Container memory against its limit", [
        (f"llmmon_container_memory_usage_bytes{{{SEL}}}", "used {{instance}}"),
        (f"llmmon_container_memory_limit_bytes{{{SEL}}}", "limit {{instance}}")], "bytes", w=8)
    b.add("timeseries", "OOM kills", [
        (f"increase(llmmon_container_memory_oom_kills_total{{{SEL}}}[{RI}])", "{{instance}}")],
        "short", w=8)
    b.add("timeseries", "Disk space used", [(
        f"1 - llmmon_host_disk_avail_bytes{{{SEL}}} / llmmon_host_disk_total_bytes{{{SEL}}}",
        "{{instance}} {{mountpoint}}")], "percentunit", w=8,
        thresholds=[(None, "green"), (0.9, "red")])
    b.add("timeseries", "Disk I/O", [
        (f"rate(llmmon_host_disk_read_bytes_total{{{SEL}}}[{RI}])", "read {{device}}"),
        (f"rate(llmmon_host_disk_written_bytes_total{{{SEL}}}[{RI}])", "write {{device}}")],
        "Bps", w=8)
    b.add("timeseries", "Network", [
        (f"rate(llmmon_host_network_receive_bytes_total{{{SEL}}}[{RI}])", "rx {{interface}}"),
        (f"rate(llmmon_host_network_transmit_bytes_total{{{SEL}}}[{RI}])", "tx {{interface}}")],
        "Bps", w=8)
    b.add("timeseries", "Network errors and drops", [
        (f"rate(llmmon_host_network_receive_errors_total{{{SEL}}}[{RI}]) + "
         f"rate(llmmon_host_network_transmit_errors_total{{{SEL}}}[{RI}])", "errors {{interface}}"),
        (f"rate(llmmon_host_network_receive_drops_total{{{SEL}}}[{RI}]) + "
         f"rate(llmmon_host_network_transmit_drops_total{{{SEL}}}[{RI}])", "drops {{interface}}")],
        "pps", w=8)
    b.row("GPUs")
    b.add("stat", "GPUs up", [(f"llmmon_gpu_up{{{GPU}}}", "GPU {{gpu}}")], "none", w=6,
          thresholds=[(None, "red"), (1, "green")], colorMode="background")
    b.add("timeseries", "Saturation: SM activity (kernel time where no GPM)", [
        (f'llmmon_gpu_sm_active_ratio{{{GPU}, gpu_instance=""}}', "SM activity {{gpu}}"),
        (f'llmmon_gpu_utilization_ratio{{{GPU}}} unless on (instance, job, gpu, uuid) '
         f'llmmon_gpu_sm_active_ratio{{gpu_instance=""}}', "kernel time {{gpu}} (no GPM)")],
        "percentunit", w=9, thresholds=[(None, "green"), (0.9, "red")],
        description="What GPUSaturated alerts on. SM activity (GPM, Hopper and later) is the "
        "share of SMs busy; where a GPU has no GPM, NVML's utilisation (the share of time any "
        "kernel ran, 100% for one small kernel) is drawn instead and labelled so.")
    b.add("timeseries", "Memory used", [(
        f"llmmon_gpu_memory_used_bytes{{{GPU}}} / llmmon_gpu_memory_total_bytes{{{GPU}}}",
        "GPU {{gpu}}")], "percentunit", w=9, thresholds=[(None, "green"), (0.97, "red")])
    b.add("timeseries", "Temperature", [(f"llmmon_gpu_temperature_celsius{{{GPU}}}",
                                         "GPU {{gpu}}")], "celsius", w=8,
          thresholds=[(None, "green"), (80, "orange"), (85, "red")])
    b.add("timeseries", "Power against limit", [
        (f"llmmon_gpu_power_watts{{{GPU}}}", "draw {{gpu}}"),
        (f"llmmon_gpu_power_limit_watts{{{GPU}}}", "limit {{gpu}}")], "watt", w=8)
    b.add("timeseries", "Energy (average power)", [
        (f"rate(llmmon_gpu_energy_joules_total{{{GPU}}}[{RI}])", "GPU {{gpu}}")], "watt", w=8,
        description="From the energy counter: the true average, not a sample.")
    b.add("timeseries", "Clocks", [(f"llmmon_gpu_clock_hertz{{{GPU}}}", "{{clock}} {{gpu}}")],
          "hertz", w=8)
    b.add("timeseries", "Clock throttle reasons", [(
        f'llmmon_gpu_throttle_active{{{GPU}, reason!="gpu_idle"}} == 1',
        "{{reason}} {{gpu}}")], "none", w=8, description="Only active reasons are drawn.")
    b.add("timeseries", "Fan speed", [(f"llmmon_gpu_fan_speed_ratio{{{GPU}}}", "GPU {{gpu}}")],
          "percentunit", w=8)
    b.add("timeseries", "ECC errors", [(
        f"increase(llmmon_gpu_ecc_errors_total{{{GPU}}}[1h])", "{{type}} {{gpu}}")], "short",
        w=8, thresholds=[(None, "green"), (1, "red")])
    b.add("timeseries", "PCIe throughput", [
        (f"llmmon_gpu_pcie_rx_bytes_per_second{{{GPU}}}", "rx {{gpu}}"),
        (f"llmmon_gpu_pcie_tx_bytes_per_second{{{GPU}}}", "tx {{gpu}}")], "Bps", w=8)
    b.add("timeseries", "GPU memory by process", [(
        f"llmmon_gpu_process_memory_used_bytes{{{GPU}}}", "{{process}} ({{pid}}) GPU {{gpu}}")],
        "bytes", w=8)
    b.add("timeseries", "Kernel time and memory bus (NVML utilisation)", [
        (f"llmmon_gpu_utilization_ratio{{{GPU}}}", "kernel time {{gpu}}"),
        (f"llmmon_gpu_memory_utilization_ratio{{{GPU}}}", "memory bus {{gpu}}")],
        "percentunit", w=8, description="Share of time any kernel ran, and the memory bus was "
        "busy: a busy signal, not a saturation one (see SM activity).")
    b.add("timeseries", "Tensor cores, occupancy, DRAM bandwidth (GPM)", [
        (f'llmmon_gpu_tensor_active_ratio{{{GPU}, gpu_instance=""}}', "tensor {{gpu}}"),
        (f'llmmon_gpu_sm_occupancy_ratio{{{GPU}, gpu_instance=""}}', "occupancy {{gpu}}"),
        (f'llmmon_gpu_dram_bandwidth_utilization_ratio{{{GPU}, gpu_instance=""}}',
         "DRAM bandwidth {{gpu}}")], "percentunit", w=8,
        description="GPM, over each sample interval; absent on GPUs before Hopper.")
    b.add("timeseries", "SM activity by MIG instance (GPM)", [(
        f'llmmon_gpu_sm_active_ratio{{{GPU}, gpu_instance!=""}}',
        "GPU {{gpu}} instance {{gpu_instance}}")], "percentunit", w=8,
        description="Only GPUs in MIG mode have instances.")
    b.add("timeseries", "NVLink throughput (GPM)", [
        (f"llmmon_gpu_nvlink_rx_bytes_per_second{{{GPU}}}", "rx {{gpu}}"),
        (f"llmmon_gpu_nvlink_tx_bytes_per_second{{{GPU}}}", "tx {{gpu}}")], "Bps", w=8)
    b.add("timeseries", "SM utilisation by process", [(
        f"llmmon_gpu_process_sm_utilization_ratio{{{GPU}}}",
        "{{process}} ({{pid}}) GPU {{gpu}}")], "percentunit", w=8,
        description="Each process's share when several share a GPU.")
    b.add("timeseries", "Clocks held down (violation time)", [(
        f"rate(llmmon_gpu_violation_seconds_total{{{GPU}}}[{RI}])", "{{policy}} {{gpu}}")],
        "percentunit", w=8, description="Share of time the clocks were held below their "
        "target, by policy (power, thermal, ...).")
    b.add("timeseries", "Critical XID events", [(
        f"increase(llmmon_gpu_xid_errors_total{{{GPU}}}[1h]) > 0", "XID {{xid}} GPU {{gpu}}")],
        "short", w=8, thresholds=[(None, "green"), (1, "red")],
        description="Only codes that occurred are drawn; 48, 79 and 95 mean the GPU needs a "
        "reset.")
    b.add("timeseries", "Memory repair (remapped rows, retired pages)", [
        (f"llmmon_gpu_remapped_rows{{{GPU}}}", "rows {{type}} {{gpu}}"),
        (f"llmmon_gpu_retired_pages{{{GPU}}}", "pages {{cause}} {{gpu}}"),
        (f"llmmon_gpu_row_remap_pending{{{GPU}}}", "reset pending {{gpu}}")], "short", w=8)
    b.add("timeseries", "NVML cost per call", [(
        f"rate(llmmon_gpu_nvml_call_seconds_total{{{SEL}}}[{RI}]) / "
        f"rate(llmmon_gpu_nvml_calls_total{{{SEL}}}[{RI}])", "{{function}}")], "s", w=8,
        description="What each NVML function costs the GPU sampler per call.")
    b.row("Model server process")
    b.add("stat", "Up", [(f"llmmon_target_process_up{{{SEL}}}", "{{target}}")], "none", w=6,
          thresholds=[(None, "red"), (1, "green")], colorMode="background")
    b.add("timeseries", "CPU", [(
        f"rate(llmmon_target_process_cpu_seconds_total{{{SEL}}}[{RI}])", "{{target}}")],
        "short", w=6, description="Cores.")
    b.add("timeseries", "Memory", [
        (f"llmmon_target_process_resident_memory_bytes{{{SEL}}}", "RSS {{target}}"),
        (f"llmmon_target_process_gpu_memory_bytes{{{SEL}}}", "GPU {{target}}")], "bytes", w=6)
    b.add("timeseries", "GPU SM share", [(
        f"llmmon_target_process_gpu_sm_utilization_ratio{{{SEL}}}", "{{target}} GPU {{gpu}}")],
        "percentunit", w=6, description="The process's own share of each GPU's SM time.")
    b.add("timeseries", "Threads and open files", [
        (f"llmmon_target_process_threads{{{SEL}}}", "threads {{target}}"),
        (f"llmmon_target_process_open_fds{{{SEL}}}", "fds {{target}}")], "short", w=6)
    self_health(b)
    return b.dashboard("llmmon-resources", "LLM resources",
                       "The machine under the model: host, container, GPUs, server process.",
                       [DATASOURCE, JOB, INSTANCE,
                        variable("gpu", f"label_values(llmmon_gpu_up{{{SEL}}}, gpu)", "GPU")])


DASHBOARDS = {"llm-endpoints.json": endpoints, "llm-resources.json": resources}


def render() -> dict[str, str]:
    return {name: json.dumps(build(), indent=2) + "\n" for name, build in DASHBOARDS.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    stale = []
    for name, text in render().items():
        path = OUT / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            OUT.mkdir(exist_ok=True)
            path.write_text(text)
    if stale:
        print("out of date: " + ", ".join(stale) + "; run python grafana/build_dashboards.py")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
