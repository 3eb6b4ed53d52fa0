"""Writes slo-recording.test.yml and slo-alerts.test.yml: promtool tests of the SLO recording
rules and the eight burn-rate alerts, from the SRE workbook's table below (not from the rules
file, so a rule that drifts from the table fails them).

    python deploy/prometheus/tests/build_slo_tests.py          # rewrite
    python deploy/prometheus/tests/build_slo_tests.py --check  # exit 1 if out of date

The cases are literal numbers either side of every threshold: a burn rate 2% over and 2%
under each factor, each window of a pair alone, one bad event where two are needed, another
objective burning beside the one under test, and two deployments of the same endpoint name.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
# Two files: the recording rules are checked at one instant four days in, so their file is
# evaluated once a day (every minute would be 5,760 evaluations of every rule: 90 s).
OUT = {HERE / "slo-recording.test.yml": "1d", HERE / "slo-alerts.test.yml": "1m"}
RUNBOOKS = "https://github.com/example/llmmon/blob/main/docs/runbooks.md#"
TARGET = {"namespace": "team-a", "job": "team-a/llmmon", "instance": "10.0.0.1:9977",
          "provider": "openai", "model": "m"}

# (long window, short window, factor, guard series or None) per branch.
PAGE = [("rate1h", "rate5m", 14.4, "increase1h"), ("rate6h", "rate30m", 6.0, "increase6h")]
TICKET = [("rate1d", "rate2h", 3.0, None), ("rate3d", "rate6h", 1.0, None)]
WINDOWS = ("rate5m", "rate30m", "rate1h", "rate2h", "rate6h", "rate1d", "rate3d")
ALERTS = [  # name, objective, severity, branches, summary, description's subject, its span
    ("LLMAvailabilityBudgetBurnFast", "availability", "critical", PAGE,
     "{e} is burning its availability budget fast", "Unanswered probes burn the error budget",
     "the last hour, or 6 hours"),
    ("LLMAvailabilityBudgetBurnSlow", "availability", "warning", TICKET,
     "{e} is steadily burning its availability budget", "Unanswered probes burn the error budget",
     "the last day, or 3 days"),
    ("LLMTTFTBudgetBurnFast", "ttft", "critical", PAGE,
     "Time to first token on {e} is far over its objective", "Slow first tokens burn the budget",
     "the last hour, or 6 hours"),
    ("LLMTTFTBudgetBurnSlow", "ttft", "warning", TICKET,
     "Time to first token on {e} keeps exceeding its objective",
     "Slow first tokens burn the budget", "the last day, or 3 days"),
    ("LLMITLBudgetBurnFast", "itl", "critical", PAGE,
     "Token streaming on {e} is far slower than its objective", "Slow token gaps burn the budget",
     "the last hour, or 6 hours"),
    ("LLMITLBudgetBurnSlow", "itl", "warning", TICKET,
     "Token streaming on {e} keeps exceeding its objective", "Slow token gaps burn the budget",
     "the last day, or 3 days"),
    ("LLMAccuracyBudgetBurnFast", "accuracy", "warning", PAGE,
     "{e} answers its check prompts wrongly",
     "Failed answer checks (or answers from another model) burn the accuracy budget",
     "the last hour, or 6 hours"),
    ("LLMAccuracyBudgetBurnSlow", "accuracy", "info", TICKET,
     "{e} keeps failing some answer checks", "Failed answer checks burn the accuracy budget",
     "the last day, or 3 days"),
]
DESCRIPTION_TAIL = {
    "LLMTTFTBudgetBurnFast": "; the threshold is the endpoint's slo.ttft.",
    "LLMITLBudgetBurnFast": "; the threshold is the endpoint's slo.itl.",
}
OTHER = {"availability": "ttft", "ttft": "itl", "itl": "accuracy", "accuracy": "availability"}


def allows(subject: str) -> str:
    return "the objective allows" if "error budget" in subject else "allowed"


def selector(name: str, **labels: str) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in {**TARGET, **labels}.items())
    return f"{name}{{{inner}}}"


def burn_series(endpoint: str, objective: str, burns: dict[str, float], bad: float
                ) -> list[dict[str, str]]:
    """Constant recorded series for one case: the given burn rates (0 elsewhere) and the
    bad-event counts of both page windows."""
    out = [{"series": selector(f"llmmon:slo_burn_rate:{w}", llm_endpoint=endpoint,
                               objective=objective), "values": f"{burns.get(w, 0.0)}x10"}
           for w in WINDOWS]
    out += [{"series": selector(f"llmmon:slo_bad_events:{w}", llm_endpoint=endpoint,
                                objective=objective), "values": f"{bad}x10"}
            for w in ("increase1h", "increase6h")]
    return out


def alert_test(name: str, objective: str, severity: str, branches: list[Any], summary: str,
               subject: str, span: str) -> dict[str, Any]:
    series: list[dict[str, str]] = []
    firing = []
    for i, (long, short, factor, guard) in enumerate(branches, 1):
        above, below, far = round(factor * 1.02, 4), round(factor * 0.98, 4), factor * 1.5
        cases = {f"b{i}-fires": ({long: above, short: above}, 2),
                 f"b{i}-long-under": ({long: below, short: far}, 2),
                 f"b{i}-short-under": ({long: far, short: below}, 2)}
        if guard:
            cases[f"b{i}-one-bad"] = ({long: far, short: far}, 1)
        for endpoint, (burns, bad) in cases.items():
            series += burn_series(endpoint, objective, burns, bad)
        # another objective burning everywhere, on the case that fires: not this alert's
        series += burn_series(f"b{i}-fires", OTHER[objective], {w: 100.0 for w in WINDOWS}, 99)
        firing.append({
            "exp_labels": {**TARGET, "severity": severity, "llm_endpoint": f"b{i}-fires",
                           "objective": objective},
            "exp_annotations": {
                "summary": summary.format(e=f"b{i}-fires"),
                "description": f"{subject} {above:.1f}x as fast as {allows(subject)}"
                               f" (over {span}){DESCRIPTION_TAIL.get(name, '.')}",
                "runbook_url": RUNBOOKS + name.lower()}})
    return {"name": f"{name}: each branch fires just over its factor, never on one window, "
                    "one bad event or another objective",
            "interval": "1m", "input_series": series,
            "alert_rule_test": [{"eval_time": "5m", "alertname": name, "exp_alerts": firing}]}


# --- the recording rules ---------------------------------------------------------------

T = 5760  # minutes: four days of series, so a doubled 3d window would see more
GOOD_PER_MINUTE = 10
# Bad events: (minutes before T, how many). Each window (and its half and double) holds a
# different set, so a changed window changes every ratio it feeds.
BURSTS = [(4, 1), (8, 2), (20, 4), (45, 8), (90, 16), (180, 32), (300, 64), (600, 128),
          (1200, 256), (2160, 512), (3600, 1024), (5040, 2048)]
MINUTES = {"rate5m": 5, "rate30m": 30, "rate1h": 60, "rate2h": 120, "rate6h": 360,
           "rate1d": 1440, "rate3d": 4320}
OBJECTIVE = 0.99


def counter_values(bursts: list[tuple[int, int]]) -> str:
    """promtool's expanding notation for a counter that steps up at T - minutes."""
    steps = sorted((T - before, n) for before, n in bursts)
    parts, at, value = [], 0, 0
    for when, n in steps:
        parts.append(f"{value}x{when - at - 1}")  # held from `at` until the minute before
        value += n
        at = when
    parts.append(f"{value}x{T - at}")
    return " ".join(parts)


def bad_within(minutes: int) -> int:
    """Bad events in (T - minutes, T]: those after the window's first sample."""
    return sum(n for before, n in BURSTS if before < minutes)


def recording_test() -> dict[str, Any]:
    a = {"llm_endpoint": "vllm", "objective": "availability"}
    b = {**a, "namespace": "team-b", "job": "team-b/llmmon"}  # same name, another deployment
    series = [
        {"series": selector("llmmon_probe_slo_events_total", **a, result="good"),
         "values": f"0+{GOOD_PER_MINUTE}x{T}"},
        {"series": selector("llmmon_probe_slo_events_total", **a, result="bad"),
         "values": counter_values(BURSTS)},
        # starting events are neither good nor bad: they must not dilute the ratio
        {"series": selector("llmmon_probe_slo_events_total", **a, result="starting"),
         "values": f"0+7x{T}"},
        {"series": selector("llmmon_probe_slo_objective_ratio", **a), "values": f"{OBJECTIVE}x{T}"},
        {"series": selector("llmmon_probe_slo_events_total", **b, result="good"),
         "values": f"0+{GOOD_PER_MINUTE}x{T}"},
        {"series": selector("llmmon_probe_slo_events_total", **b, result="bad"),
         "values": f"0x{T}"},
        {"series": selector("llmmon_probe_slo_objective_ratio", **b), "values": f"{OBJECTIVE}x{T}"},
    ]
    tests = []
    for window, minutes in MINUTES.items():
        bad = bad_within(minutes)
        ratio = bad / (bad + GOOD_PER_MINUTE * minutes)
        for rule, value in ((f"llmmon:slo_error_ratio:{window}", ratio),
                            (f"llmmon:slo_burn_rate:{window}", ratio / (1 - OBJECTIVE))):
            # promtool compares floats exactly: to the nanounit, which any mutant misses
            tests.append({"expr": f"round({rule} * 1e9)", "eval_time": f"{T}m", "exp_samples": [
                {"labels": selector("", **a), "value": round(value * 1e9)},
                {"labels": selector("", **{**TARGET, **b}), "value": 0}]})
    for window, minutes in (("increase1h", 60), ("increase6h", 360)):
        rule = f"llmmon:slo_bad_events:{window}"
        tests.append({"expr": rule, "eval_time": f"{T}m", "exp_samples": [
            {"labels": selector(rule, **a), "value": bad_within(minutes)},
            {"labels": selector(rule, **{**TARGET, **b}), "value": 0}]})
    return {"name": "recording rules: every window holds exactly its own bad events, per "
                    "deployment and objective, starting events left out",
            "interval": "1m", "input_series": series, "promql_expr_test": tests}


def render() -> dict[Path, str]:
    header = ("# Generated by deploy/prometheus/tests/build_slo_tests.py; do not edit.\n"
              "# promtool test rules deploy/prometheus/tests/*.test.yml\n")
    tests = {"slo-recording.test.yml": [recording_test()],
             "slo-alerts.test.yml": [alert_test(*alert) for alert in ALERTS]}
    out = {}
    for path, interval in OUT.items():
        doc = {"rule_files": ["../llmmon-rules.yml"], "evaluation_interval": interval,
               "tests": tests[path.name]}
        out[path] = header + yaml.safe_dump(doc, sort_keys=False, width=120)
    return out


def main() -> int:
    for path, text in render().items():
        if "--check" not in sys.argv:
            path.write_text(text)
        elif not path.exists() or path.read_text() != text:
            print(f"{path} is out of date; run python deploy/prometheus/tests/build_slo_tests.py")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
