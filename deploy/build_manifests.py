"""Writes the generated Kubernetes manifests from their sources, so that the Prometheus Operator
and Grafana get exactly what the repository tests (one source of truth for each):

- deploy/kubernetes/monitoring/prometheusrule.yaml: the PrometheusRule, from
  deploy/prometheus/llmmon-rules.yml (the file promtool tests);
- deploy/kubernetes/monitoring/dashboards.yaml: one ConfigMap per grafana/dashboards/*.json,
  labelled grafana_dashboard: "1" for the Grafana sidecar of kube-prometheus-stack.

    python deploy/build_manifests.py          # rewrite
    python deploy/build_manifests.py --check  # exit 1 if any is out of date

(It lives outside deploy/kubernetes so that every YAML file there is a manifest.)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RULES = HERE / "prometheus" / "llmmon-rules.yml"
DASHBOARDS = ROOT / "grafana" / "dashboards"
MONITORING = HERE / "kubernetes" / "monitoring"
PROMETHEUS_RULE = MONITORING / "prometheusrule.yaml"
DASHBOARD_CONFIGMAPS = MONITORING / "dashboards.yaml"
SCRIPT = "deploy/build_manifests.py"
LABELS = {"app.kubernetes.io/name": "llmmon", "app.kubernetes.io/part-of": "llmmon"}


def _block(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    """Multi-line strings (PromQL, dashboard JSON) as literal blocks, as they are written in
    their sources (YAML falls back to a quoted scalar where a block cannot hold the text)."""
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(str, _block)


def _dump(resource: dict[str, Any]) -> str:
    return yaml.dump(resource, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)


def _header(source: str) -> str:
    return f"# Generated from {source} by {SCRIPT}; do not edit.\n"


def prometheus_rule() -> str:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "llmmon", "labels": dict(LABELS)},
        "spec": {"groups": groups},
    }
    return _header("deploy/prometheus/llmmon-rules.yml") + _dump(resource)


def dashboard_configmaps() -> str:
    """One ConfigMap per dashboard (a ConfigMap holds at most 1 MiB, and `kubectl apply`
    without --server-side copies it into an annotation limited to 256 KiB)."""
    documents = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        text = path.read_text()
        json.loads(text)  # a broken dashboard fails here, not in Grafana's log
        documents.append(_dump({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": f"llmmon-dashboard-{path.stem}",
                "labels": {**LABELS, "grafana_dashboard": "1"},
            },
            "data": {path.name: text},
        }))
    return _header("grafana/dashboards/*.json") + "---\n".join(documents)


def outputs() -> dict[Path, str]:
    return {PROMETHEUS_RULE: prometheus_rule(), DASHBOARD_CONFIGMAPS: dashboard_configmaps()}


def main(argv: list[str]) -> int:
    stale = [path for path, text in outputs().items()
             if not path.exists() or path.read_text() != text]
    if "--check" in argv:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date; run python {SCRIPT}")
        return 1 if stale else 0
    for path, text in outputs().items():
        if path in stale:
            path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
