"""What llmmon ships: the image's Dockerfile, the Kubernetes manifests, the compose stack, and
the image's runtime contract checked without a Docker engine."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from llmmon.config.settings import load_settings
from tests.conftest import LISTENING, reported_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy/kubernetes"
BIN = Path(sys.executable).parent


def run(*args: str | Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300,
                          **kw)


def test_dockerfile_passes_hadolint() -> None:
    """hadolint finds nothing at the warning threshold."""
    linted = run(BIN / "hadolint", "--failure-threshold", "warning", ROOT / "Dockerfile")
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_dockerfile_contract() -> None:
    """Multi-stage, pinned base, numeric non-root user, healthcheck, exec-form entrypoint."""
    text = (ROOT / "Dockerfile").read_text()
    froms = [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")]
    assert len(froms) == 2
    assert all(":3.11." in image and "slim" in image for image in froms)
    assert "USER 10001:10001" in text
    assert 'ENTRYPOINT ["llmmon", "run"]' in text
    assert 'CMD ["llmmon", "healthcheck"]' in text
    assert "EXPOSE 9977" in text


def manifests() -> list[Path]:
    return sorted(K8S.rglob("*.yaml"))


def test_kubernetes_manifests_validate_strictly() -> None:
    """kubernetes-validate --strict accepts every manifest (CRDs and kustomizations it skips)."""
    checked = run(BIN / "kubernetes-validate", "--strict", *manifests())
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("passed") >= 3  # the ConfigMap, Deployment and Service


def load(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((K8S / "base" / name).read_text()))


def test_llmmon_is_a_hardened_native_sidecar() -> None:
    """In initContainers with restartPolicy Always, locked down, ready on /readyz."""
    pod = load("deployment.yaml")["spec"]["template"]["spec"]
    assert pod["shareProcessNamespace"] is True
    (sidecar,) = [c for c in pod["initContainers"] if c["name"] == "llmmon"]
    assert sidecar["restartPolicy"] == "Always"
    security = sidecar["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["seccompProfile"]["type"] == "RuntimeDefault"
    assert sidecar["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert sidecar["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert sidecar["resources"]["limits"]
    assert sidecar["resources"]["requests"]
    mounts = {m["mountPath"] for m in sidecar["volumeMounts"]}
    assert {"/etc/llmmon", "/run/secrets/llmmon", "/tmp"} <= mounts


def test_prometheusrule_is_built_from_the_rules_file() -> None:
    """One source of truth: the PrometheusRule's groups are the rules file's groups."""
    fresh = run(sys.executable, ROOT / "deploy/build_prometheusrule.py", "--check")
    assert fresh.returncode == 0, fresh.stdout
    rule = load("prometheusrule.yaml")
    shipped = yaml.safe_load((ROOT / "deploy/prometheus/llmmon-rules.yml").read_text())
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == shipped["groups"]


def test_podmonitor_has_limits() -> None:
    """The PodMonitor scrapes the metrics port with sample and label limits."""
    monitor = load("podmonitor.yaml")
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["sampleLimit"] > 0
    assert monitor["spec"]["labelLimit"] > 0


def test_shipped_llmmon_configs_are_valid(tmp_path: Path) -> None:
    """The ConfigMap's and the compose stack's llmmon configs pass llmmon's own validation."""
    key = tmp_path / "key"
    key.write_text("k")
    embedded = load("configmap.yaml")["data"]["config.yaml"]
    configs = {
        "k8s": embedded.replace("/run/secrets/llmmon/api-key", str(key)),
        "compose": (ROOT / "deploy/compose/llmmon.yaml").read_text(),
    }
    for name, text in configs.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        assert load_settings(path).endpoints, name


def test_compose_stack_validates() -> None:
    """compose.yaml follows the compose specification; its Prometheus config passes promtool."""
    spec = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec",
               ROOT / "deploy/compose/compose.yaml")
    assert spec.returncode == 0, spec.stdout + spec.stderr
    promtool = shutil.which("promtool")
    assert promtool, "promtool is required (scripts/test installs it)"
    config = run(promtool, "check", "config", ROOT / "deploy/compose/prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    services = yaml.safe_load((ROOT / "deploy/compose/compose.yaml").read_text())["services"]
    assert {"llmmon", "prometheus", "alertmanager", "grafana", "ollama"} <= set(services)
    assert services["llmmon"]["read_only"] is True


def _python_for_nobody() -> str:
    """An interpreter that an unprivileged user can run (pyenv under /root is not one)."""
    for candidate in (sys.executable, "/usr/bin/python3.11", "/usr/bin/python3"):
        if Path(candidate).exists() and run("runuser", "-u", "nobody", "--", candidate,
                                            "-c", "import venv").returncode == 0:
            return candidate
    pytest.fail("no Python 3.11 that an unprivileged user can run (install python3-venv)")


@pytest.fixture(scope="module")
def installed() -> Iterator[Path]:
    """The wheel installed into a fresh virtualenv, then made read-only, like the image."""
    base = Path(tempfile.mkdtemp(prefix="llmmon-image-"))
    try:
        os.chmod(base, 0o755)
        built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    base / "wheels", ROOT)
        assert built.returncode == 0, built.stderr
        python = _python_for_nobody() if os.geteuid() == 0 else sys.executable
        assert run(python, "-m", "venv", base / "venv").returncode == 0
        wheel = next((base / "wheels").glob("llmmon-*.whl"))
        done = run(base / "venv/bin/pip", "install", "-q", "--disable-pip-version-check", wheel)
        assert done.returncode == 0, done.stderr
        run("chmod", "-R", "a-w,a+rX", base / "venv")
        yield base
    finally:
        run("chmod", "-R", "u+w", base)
        shutil.rmtree(base, ignore_errors=True)


def test_image_runtime_contract(installed: Path, tmp_path: Path) -> None:
    """As an unprivileged user, with a read-only install and config, llmmon serves /healthz,
    `llmmon healthcheck` agrees, and SIGTERM ends it with exit code 0."""
    etc = installed / "etc-llmmon"
    etc.mkdir()
    (etc / "config.yaml").write_text('listen: "127.0.0.1:0"\n')  # it names the port it gets
    os.chmod(etc / "config.yaml", 0o444)
    os.chmod(etc, 0o555)
    env = {"PATH": f"{installed}/venv/bin:/usr/bin:/bin", "HOME": "/nonexistent",
           "PYTHONDONTWRITEBYTECODE": "1", "LLMMON_CONFIG": str(etc / "config.yaml")}
    user = {"user": 65534, "group": 65534, "extra_groups": []} if os.geteuid() == 0 else {}
    log_path = tmp_path / "llmmon.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([f"{installed}/venv/bin/llmmon", "run"], env=env, cwd="/",
                                stdout=log, stderr=subprocess.STDOUT, **user)
    try:
        port = reported_port(proc, log_path, LISTENING, "llmmon")

        def healthy() -> bool:
            assert proc.poll() is None, log_path.read_text(errors="replace")
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 30, "llmmon to serve /healthz")
        # The same config, but with the port llmmon got: the environment overrides the file.
        check = run(f"{installed}/venv/bin/llmmon", "healthcheck", cwd="/",
                    env={**env, "LLMMON_LISTEN": f"127.0.0.1:{port}"}, **user)
        assert check.returncode == 0, check.stdout + check.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
