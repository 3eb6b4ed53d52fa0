"""Writes deploy/kubernetes/base/prometheusrule.yaml from deploy/prometheus/llmmon-rules.yml,
so the Prometheus Operator gets exactly the rules that promtool tests (one source of truth).

    python deploy/build_prometheusrule.py          # rewrite
    python deploy/build_prometheusrule.py --check  # exit 1 if out of date

(It lives outside deploy/kubernetes so that every file there is a manifest.)
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE / "prometheus" / "llmmon-rules.yml"
OUT = HERE / "kubernetes" / "base" / "prometheusrule.yaml"
HEADER = ("# Generated from deploy/prometheus/llmmon-rules.yml by "
          "deploy/build_prometheusrule.py; do not edit.\n")


def _block(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    """Multi-line strings (PromQL) as literal blocks, as they are written in the rules file."""
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


yaml.SafeDumper.add_representer(str, _block)


def render() -> str:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "llmmon", "labels": {"app.kubernetes.io/name": "llmmon"}},
        "spec": {"groups": groups},
    }
    return HEADER + yaml.safe_dump(resource, sort_keys=False, width=100, allow_unicode=True)


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is out of date; run python deploy/build_prometheusrule.py")
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
