"""scripts/mutate-rules: the mutants it makes of PromQL rules, and its score against promtool."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "mutate-rules"


def _load_script() -> ModuleType:
    """The script as a module: it has no .py suffix, so it needs an explicit loader."""
    loader = importlib.machinery.SourceFileLoader("mutate_rules", str(SCRIPT))
    spec = importlib.util.spec_from_loader("mutate_rules", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutate_rules"] = module  # dataclasses look their module up while being built
    loader.exec_module(module)
    return module


mr = _load_script()


def mutated(expr: str, kind: str) -> list[str]:
    """The expression after each mutation of one kind, in the generator's order."""
    return [e.apply(expr) for e in mr.expression_edits(expr) if e.kind == kind]


def kinds(expr: str) -> set[str]:
    return {e.kind for e in mr.expression_edits(expr)}


# --- thresholds -----------------------------------------------------------------------------

def test_thresholds_are_halved_and_doubled() -> None:
    assert mutated("x > 0.2", "threshold") == ["x > 0.1", "x > 0.4"]
    assert mutated("x >= 3", "threshold") == ["x >= 1.5", "x >= 6"]
    assert mutated("x < 85", "threshold") == ["x < 42.5", "x < 170"]


def test_burn_rate_multipliers_are_mutated_one_at_a_time() -> None:
    assert mutated("a > (14.4 * 0.01)", "threshold") == [
        "a > (7.2 * 0.01)", "a > (28.8 * 0.01)", "a > (14.4 * 0.005)", "a > (14.4 * 0.02)"]


def test_numbers_in_strings_names_and_windows_are_not_thresholds() -> None:
    expr = 'rate(http_5xx_total{le="2.5", code="500"}[5m]) > 1'
    assert mutated(expr, "threshold") == [
        'rate(http_5xx_total{le="2.5", code="500"}[5m]) > 0.5',
        'rate(http_5xx_total{le="2.5", code="500"}[5m]) > 2']
    assert mutated("llmmon:ratio:rate5m > 3", "threshold") == [
        "llmmon:ratio:rate5m > 1.5", "llmmon:ratio:rate5m > 6"]
    assert mutated('label_replace(x, "a", "0.9", "", "")', "threshold") == []
    assert mutated("x offset 5m", "threshold") == []


def test_zero_gives_no_threshold_mutant() -> None:
    assert mutated("up == 0", "threshold") == []  # halved and doubled, 0 is still 0


# --- comparisons ----------------------------------------------------------------------------

def test_comparisons_flip() -> None:
    assert mutated("a > 1", "comparison") == ["a < 1"]
    assert mutated("a < 1", "comparison") == ["a > 1"]
    assert mutated("a >= 1", "comparison") == ["a <= 1"]
    assert mutated("a <= 1", "comparison") == ["a >= 1"]
    assert mutated("a == 0", "comparison") == ["a != 0"]
    assert mutated("a > bool 1", "comparison") == ["a < bool 1"]


def test_matcher_operators_are_not_comparisons() -> None:
    assert mutated('x{a!="1", b=~"2", c!~"3", d="4"}', "comparison") == []
    assert mutated('x{a=">"} > 1', "comparison") == ['x{a=">"} < 1']


# --- windows --------------------------------------------------------------------------------

@pytest.mark.parametrize(("window", "halved", "doubled"), [
    ("5m", "2m30s", "10m"),
    ("1h", "30m", "2h"),
    ("3d", "1d12h", "6d"),
    ("1h30m", "45m", "3h"),
    ("30s", "15s", "1m"),
    ("1d", "12h", "2d"),
])
def test_windows_are_halved_and_doubled(window: str, halved: str, doubled: str) -> None:
    assert mutated(f"rate(x[{window}]) > 1", "window") == [
        f"rate(x[{halved}]) > 1", f"rate(x[{doubled}]) > 1"]


def test_subquery_range_changes_and_its_step_does_not() -> None:
    assert mutated("max_over_time(x[30m:1m])", "window") == [
        "max_over_time(x[15m:1m])", "max_over_time(x[1h:1m])"]


def test_offsets_are_not_windows() -> None:
    assert mutated("rate(x[5m] offset 1h)", "window") == [
        "rate(x[2m30s] offset 1h)", "rate(x[10m] offset 1h)"]


def test_durations_are_valid_prometheus_durations() -> None:
    assert mr.format_duration(150_000) == "2m30s"
    assert mr.format_duration(7 * 86_400_000) == "1w"
    assert mr.format_duration(1500) == "1s500ms"
    assert mr.scale_duration("1ms", 0.5) is None  # no half milliseconds
    assert mr.parse_duration("5x") is None
    valid = re.compile(r"^(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$")
    for text in ["1s", "5m", "15m", "1h", "6h", "1d", "3d", "1w", "1y", "2m30s", "1d12h"]:
        ms = mr.parse_duration(text)
        assert mr.format_duration(ms) == text
        for factor in (0.5, 2):
            scaled = mr.scale_duration(text, factor)
            assert scaled, (text, factor)
            assert valid.match(scaled), (text, factor, scaled)
            assert mr.parse_duration(scaled) == ms * factor


# --- set operators, matchers, grouping -----------------------------------------------------

def test_set_operators_swap() -> None:
    assert mutated("a > 1 and b > 1", "set-operator") == ["a > 1 or b > 1"]
    assert mutated("a unless b", "set-operator") == ["a and b"]
    assert mutated("a or b", "set-operator") == ["a and b"]
    assert mutated("a AND b", "set-operator") == ["a or b"]


def test_set_operator_words_in_strings_and_label_lists_are_left_alone() -> None:
    assert mutated('x{reason="and"} unless on (or) y', "set-operator") == [
        'x{reason="and"} and on (or) y']
    assert mutated("x_and_more or_y", "set-operator") == []


def test_matchers_are_dropped_one_at_a_time() -> None:
    assert mutated('x{reason!="check_failed", b="y"}', "matcher") == ['x{b="y"}',
                                                                      'x{reason!="check_failed"}']
    assert mutated('x{a="1"}[5m]', "matcher") == ["x{}[5m]"]
    assert mutated('x{a="1,}", b="2"} > 1', "matcher") == ['x{b="2"} > 1', 'x{a="1,}"} > 1']
    assert mutated('x{a="1"} / y{b="2"}', "matcher") == ['x{} / y{b="2"}', 'x{a="1"} / y{}']


def test_grouping_labels_are_dropped_one_at_a_time() -> None:
    assert mutated("sum by (a, b) (x)", "grouping") == ["sum by (b) (x)", "sum by (a) (x)"]
    assert mutated("sum(x) without (a)", "grouping") == ["sum(x) without ()"]
    assert mutated("max by(a) (x)", "grouping") == ["max by() (x)"]


def test_on_and_group_left_lists_are_not_grouping() -> None:
    assert kinds("x * on (a, b) group_left (c) y") == set()


def test_snippet_shows_the_change_in_context() -> None:
    expr = "llmmon:probe_error_ratio:rate1h > (14.4 * 0.01)\n"
    edit = next(e for e in mr.expression_edits(expr) if e.kind == "threshold")
    before, after = mr.snippet(expr, edit.start, edit.end, edit.new)
    assert before == "llmmon:probe_error_ratio:rate1h > (14.4 * 0.01)"
    assert after == "llmmon:probe_error_ratio:rate1h > (7.2 * 0.01)"


# --- whole rules files ----------------------------------------------------------------------

RULES = """\
groups:
  - name: g
    rules:
      - record: job:x:rate5m
        expr: sum by (job) (rate(x_total[5m]))
      - alert: High
        expr: |
          job:x:rate5m > 0.5
        for: 10m
        labels: {severity: warning}
        annotations:
          summary: "over 0.5 for 10m; yes"
      - alert: Down
        expr: up == 0
"""


def _rules_of(text: str) -> dict[str, dict[str, object]]:
    doc = yaml.safe_load(text)
    return {r.get("alert") or r["record"]: r for g in doc["groups"] for r in g["rules"]}


def test_each_mutant_changes_one_thing_in_one_rule() -> None:
    original = _rules_of(RULES)
    mutants = mr.generate_mutants(RULES)
    assert {(m.rule, m.kind) for m in mutants} == {
        ("job:x:rate5m", "window"), ("job:x:rate5m", "grouping"),
        ("High", "threshold"), ("High", "comparison"),
        ("High", "for-removed"), ("High", "for-halved"),
        ("Down", "comparison")}
    for m in mutants:
        rules = _rules_of(m.text)
        changed = [name for name in original if rules[name] != original[name]]
        assert changed == [m.rule], m
        assert rules["High"]["annotations"] == original["High"]["annotations"]


def test_for_is_removed_and_halved() -> None:
    texts = {m.kind: m.text for m in mr.generate_mutants(RULES) if m.kind.startswith("for-")}
    assert "for" not in _rules_of(texts["for-removed"])["High"]
    assert _rules_of(texts["for-halved"])["High"]["for"] == "5m"


def test_recording_rule_mutants_run_the_tests_of_the_alerts_built_on_them() -> None:
    record = next(m for m in mr.generate_mutants(RULES) if m.rule == "job:x:rate5m")
    assert record.relevant == ("job:x:rate5m", "High")
    assert _rules_of(record.text)["job:x:rate5m"]["expr"] == "sum by (job) (rate(x_total[2m30s]))"


def test_identical_mutants_are_skipped() -> None:
    down = [m for m in mr.generate_mutants(RULES) if m.rule == "Down"]
    assert [m.after for m in down] == ["up != 0"]  # 0 halved and doubled is still 0
    texts = [m.text for m in mr.generate_mutants(RULES)]
    assert len(texts) == len(set(texts))


def test_only_restricts_the_rules_mutated() -> None:
    mutants = mr.generate_mutants(RULES, re.compile("^Hi"))
    assert {m.rule for m in mutants} == {"High"}


# --- against promtool -----------------------------------------------------------------------

def _promtool() -> str:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is required (scripts/test installs it)"
    return promtool


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


TINY_RULES = """\
groups:
  - name: tiny
    rules:
      - alert: X
        expr: up == 0
        for: 5m
"""

# X fires for the target down since 2m at 7m, not at 6m, and never for the healthy one: this
# pins the comparison, the `for` and its length.
STRONG_TEST = """\
rule_files: [../tiny-rules.yml]
evaluation_interval: 1m
tests:
  - name: down for 5 minutes fires, healthy does not
    interval: 1m
    input_series:
      - series: 'up{job="a"}'
        values: '1 1 0x10'
      - series: 'up{job="b"}'
        values: '1x12'
    alert_rule_test:
      - eval_time: 6m
        alertname: X
        exp_alerts: []
      - eval_time: 8m
        alertname: X
        exp_alerts:
          - exp_labels: {job: a}
  - name: unrelated group, never run on mutants of X
    interval: 1m
    input_series:
      - series: 'other'
        values: '1x3'
    promql_expr_test:
      - expr: other
        eval_time: 1m
        exp_samples:
          - labels: other
            value: 1
"""

# Only checks that X eventually fires: dropping or shortening `for` goes unnoticed.
WEAK_TEST = """\
rule_files: [../tiny-rules.yml]
evaluation_interval: 1m
tests:
  - name: down fires eventually
    interval: 1m
    input_series:
      - series: 'up{job="a"}'
        values: '1 1 0x10'
    alert_rule_test:
      - eval_time: 8m
        alertname: X
        exp_alerts:
          - exp_labels: {job: a}
"""


def _run(tmp_path: Path, test_text: str, *args: str,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    rules = _write(tmp_path / "prom" / "tiny-rules.yml", TINY_RULES)
    _write(tmp_path / "prom" / "tests" / "tiny.test.yml", test_text)
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--rules", str(rules),
         "--tests", str(tmp_path / "prom" / "tests" / "*.test.yml"), "--jobs", "2", *args],
        capture_output=True, text=True, timeout=60, check=False, env=env)


def test_a_test_that_pins_the_rule_kills_every_mutant(tmp_path: Path) -> None:
    _promtool()
    result = _run(tmp_path, STRONG_TEST, "--min-score", "100")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mutation score: 3/3 killed (100.0%)" in result.stdout.splitlines()
    assert "surviving mutants: 0" in result.stdout


def test_a_weak_test_leaves_survivors(tmp_path: Path) -> None:
    _promtool()
    out = tmp_path / "result.json"
    result = _run(tmp_path, WEAK_TEST, "--min-score", "90", "--json", str(out))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "mutation score: 1/3 killed (33.3%)" in result.stdout.splitlines()
    assert re.search(r"#\d+ +X +for-removed +for: 5m +→ +\(no for\)", result.stdout)
    assert re.search(r"#\d+ +X +for-halved +for: 5m +→ +for: 2m30s", result.stdout)
    data = json.loads(out.read_text())
    assert (data["killed"], data["scored"]) == (1, 3)
    assert {m["kind"]: m["status"] for m in data["mutants"]} == {
        "comparison": "killed", "for-removed": "survived", "for-halved": "survived"}


def test_list_needs_no_promtool(tmp_path: Path) -> None:
    result = _run(tmp_path, WEAK_TEST, "--list", env={"PATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        "3 mutants: comparison 1, for-halved 1, for-removed 1")


def test_missing_promtool_is_a_clear_error(tmp_path: Path) -> None:
    result = _run(tmp_path, WEAK_TEST, env={"PATH": str(tmp_path)})
    assert result.returncode == 2
    assert "promtool not found on PATH" in result.stderr


def test_failing_tests_on_the_original_rules_stop_the_run(tmp_path: Path) -> None:
    _promtool()
    result = _run(tmp_path, WEAK_TEST.replace("{job: a}", "{job: nope}"))
    assert result.returncode == 2
    assert "the tests fail on the unmutated rules" in result.stderr


def test_mutants_promtool_rejects_are_invalid(tmp_path: Path) -> None:
    """Dropping the only matcher of `{job="a"}` leaves `{}`, which is not a valid selector."""
    promtool = _promtool()
    rules = _write(tmp_path / "r.yml", TINY_RULES.replace("up == 0", 'count({job="a"}) == 0'))
    test = _write(tmp_path / "t" / "x.test.yml", WEAK_TEST.replace("../tiny-rules.yml", "../r.yml"))
    suite = mr.build_suite(rules, [test])
    mutant = next(m for m in mr.generate_mutants(rules.read_text()) if m.kind == "matcher")
    assert "count({}) == 0" in mutant.text
    outcome = mr.run_mutant(suite, mutant.text, mutant.relevant, promtool, 30)
    assert outcome.status == "invalid"


def test_mutated_durations_pass_promtool(tmp_path: Path) -> None:
    promtool = _promtool()
    text = TINY_RULES.replace("up == 0", "rate(x[1d12h]) > 0 or max_over_time(y[2m30s:1m]) > 1")
    rules = _write(tmp_path / "r.yml", text.replace("for: 5m", "for: 7m30s"))
    checked = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True,
                             text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
