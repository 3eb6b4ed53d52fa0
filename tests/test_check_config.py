"""`llmmon check-config` (every problem at once, endpoints by name, --offline, the README's
example) and `llmmon healthcheck` (only `listen` and `web_config_file` matter), run as the
real command."""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

LLMMON = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "llmmon"
README = Path(__file__).resolve().parent.parent / "README.md"
SECRET = "sk-llmmon-test-PLANTED-0123456789abcdef"


def llmmon(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LLMMON_")}
    return subprocess.run([str(LLMMON), *args], capture_output=True, text=True, timeout=60,
                          env={**base, **(env or {})})


def write(tmp_path: Path, data: object, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def endpoint(name: str, **kw: object) -> dict[str, object]:
    return {"name": name, "provider": "openai", "url": "http://127.0.0.1:8000/v1",
            "model": "m", **kw}


def problem_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    assert done.returncode == 2, done.stdout + done.stderr
    return [line.strip() for line in done.stderr.splitlines()[1:]]


# --- every problem at once -------------------------------------------------------------


def test_broken_yaml_does_not_hide_the_environments_problems(tmp_path: Path) -> None:
    """A YAML syntax error, an unknown LLMMON_* variable and a bad value from the environment
    are all listed in one run."""
    path = write(tmp_path, "endpoints: [\n  - {name: a\n")
    found = problem_lines(llmmon("check-config", "-c", str(path),
                                 env={"LLMMON_LISTN": "x", "LLMMON_SAMPLERS__GPU__INTERVAL": "z"}))
    assert len(found) == 3, found
    assert found[0].startswith(f"{path}: invalid YAML at line 2")
    assert "environment variable LLMMON_LISTN: matches no setting" in found
    assert "samplers.gpu.interval: must be a duration such as 500ms, 30s, 2m or 1h30m" in found


def test_every_endpoint_the_environment_and_the_web_config_at_once(tmp_path: Path) -> None:
    """Problems in several endpoints, a variable that is not JSON, duplicate names next to
    an invalid endpoint and a missing web config file: one line each, endpoints by name."""
    path = write(tmp_path, {
        "web_config_file": str(tmp_path / "web.yaml"),
        "endpoints": [
            endpoint("a", interval="banana"),
            endpoint("openai-prod", api_key_env="OPENAI_API_KEY_UNSET_HERE",
                     prompts=[{"name": "ok", "text": "hi"}, {"name": "capital", "text": ""}]),
            endpoint("a", provider="bogus"),
        ]})
    found = problem_lines(llmmon("check-config", "-c", str(path),
                                 env={"LLMMON_DEFAULTS": "{not json"}))
    assert found == [
        "environment variable LLMMON_DEFAULTS: cannot be parsed (lists and sections are "
        "written as JSON)",
        "endpoints[0] (a).interval: must be a duration such as 500ms, 30s, 2m or 1h30m",
        "endpoints[1] (openai-prod).api_key_env: environment variable "
        "OPENAI_API_KEY_UNSET_HERE is not set or empty",
        "endpoints[1] (openai-prod).prompts[1] (capital).text: String should have at least "
        "1 character",
        "endpoints[2] (a).provider: must be one of openai, anthropic, ollama, tgi",
        "endpoints: endpoint names must be unique: a",
        f"{tmp_path / 'web.yaml'}: file not found",
    ]


def test_header_secrets_name_their_variable_without_union_noise(tmp_path: Path) -> None:
    """A header whose variable is not set says which variable, at headers.NAME.env; the
    other member of the union (a plain value) adds no line."""
    path = write(tmp_path, {"endpoints": [endpoint("h", headers={
        "X-Org": {"env": "ORG_ID_UNSET_HERE"}, "X-Team": {"file": str(tmp_path / "none")}})]})
    found = problem_lines(llmmon("check-config", "-c", str(path)))
    assert found == [
        "endpoints[0] (h).headers.X-Org.env: environment variable ORG_ID_UNSET_HERE is not "
        "set or empty",
        "endpoints[0] (h).headers.X-Team.file: is not a readable file",
    ]


def test_strings_yaml_read_as_dates_say_to_quote_them(tmp_path: Path) -> None:
    """`model: 2024-10-21` is a date to YAML: the message says so. An API version may stay
    unquoted."""
    path = write(tmp_path, "endpoints:\n  - {name: d, provider: openai, url: http://h/v1,\n"
                           "     model: 2024-10-21, api_version: 2024-10-21,\n"
                           "     prompts: [{name: p, text: 2024-10-21T10:00:00}]}\n")
    found = problem_lines(llmmon("check-config", "-c", str(path)))
    assert found == ["endpoints[0] (d).model: YAML read this as a date; quote it",
                     "endpoints[0] (d).prompts[0] (p).text: YAML read this as a date; quote it"]


# --- --offline -------------------------------------------------------------------------


def test_offline_accepts_missing_keys_and_files(tmp_path: Path) -> None:
    """Unset variables and absent key, CA, header and web config files fail a normal check,
    one line each, and pass --offline."""
    missing = tmp_path / "not-mounted"
    path = write(tmp_path, {"web_config_file": str(missing / "web.yaml"), "endpoints": [
        endpoint("env", api_key_env="UNSET_KEY_VAR", headers={"X-A": {"env": "UNSET_HDR"}}),
        endpoint("file", api_key_file=str(missing / "key"),
                 tls_config={"ca_file": str(missing / "ca.pem")},
                 headers={"X-B": {"file": str(missing / "hdr")}})]})
    online = problem_lines(llmmon("check-config", "-c", str(path)))
    assert len(online) == 6, online
    offline = llmmon("check-config", "--offline", "-c", str(path))
    assert offline.returncode == 0, offline.stderr
    assert offline.stdout.startswith(f"# {path}: valid (offline: keys and files not looked at)")
    assert yaml.safe_load(offline.stdout)["endpoints"][1]["api_key_file"] == str(missing / "key")


def test_offline_still_checks_the_form(tmp_path: Path) -> None:
    """--offline rejects what is malformed: a variable name that is not one, a path that is
    empty, a web config file that is there but wrong."""
    web = write(tmp_path, {"basic_auth_users": {"prometheus": "plain-text"}, "tls": 1},
                "web.yaml")
    path = write(tmp_path, {"web_config_file": str(web), "endpoints": [
        endpoint("a", api_key_env="not a name"), endpoint("b", api_key_file="")]})
    found = problem_lines(llmmon("check-config", "--offline", "-c", str(path)))
    assert found == [
        "endpoints[0] (a).api_key_env: String should match pattern "
        "'^[A-Za-z_][A-Za-z0-9_]{0,127}$'",
        "endpoints[1] (b).api_key_file: is not a file path",
        f"{web}: tls: unknown key",
    ]
    web.write_text(yaml.safe_dump({"basic_auth_users": {"prometheus": "plain-text"}}))
    assert problem_lines(llmmon("check-config", "--offline", "-c", str(path)))[-1] == \
        (f"{web}: basic_auth_users.prometheus: must be a bcrypt hash ($2a$, $2b$ or $2y$, "
         "a cost from 04 to 31, 60 characters in all)")


@pytest.mark.parametrize("offline", [[], ["--offline"]])
def test_new_messages_never_echo_secrets(tmp_path: Path, offline: list[str]) -> None:
    """Neither a key in a variable, nor a header's value, nor a key pasted where a variable's
    name belongs appears in check-config's output, valid or not, offline or not."""
    token = "hf_PLANTEDtoken0123456789abcdefABCDEF"  # a valid variable name, and a key
    env = {"PLANTED_KEY": SECRET, "PLANTED_HDR": SECRET}
    good = write(tmp_path, {"endpoints": [endpoint(
        "s", api_key_env="PLANTED_KEY",
        headers={"X-Env": {"env": "PLANTED_HDR"}, "X-Plain": SECRET})]}, "good.yaml")
    bad = write(tmp_path, {"endpoints": [endpoint(
        "s", api_key_env=token, model=SECRET * 10,
        headers={"X-Env": {"env": "PLANTED_HDR"}, "X-Plain": SECRET + "\n"})]}, "bad.yaml")
    valid = llmmon("check-config", *offline, "-c", str(good), env=env)
    assert valid.returncode == 0, valid.stderr
    invalid = llmmon("check-config", *offline, "-c", str(bad), env=env)
    assert invalid.returncode == 2
    assert "headers: the value of X-Plain contains a line break" in invalid.stderr
    if not offline:
        assert "api_key_env: names an environment variable that is not set" in invalid.stderr
    assert SECRET not in valid.stdout + valid.stderr + invalid.stdout + invalid.stderr
    assert token not in invalid.stdout + invalid.stderr


# --- the README's example --------------------------------------------------------------

_FILE_KEYS = {"web_config_file", "api_key_file", "ca_file", "file"}


def readme_configs() -> list[str]:
    """The README's fenced YAML blocks that are llmmon configs (not the web config, not
    Prometheus's)."""
    blocks = re.findall(r"^```yaml\n(.*?)^```", README.read_text(), re.S | re.M)
    configs = [b for b in blocks if re.search(r"^endpoints:", b, re.M)]
    assert configs, "no config example found in README.md"
    return configs


def _walk(node: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, str(k))
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, key)
    else:
        yield key, node


@pytest.mark.parametrize("text", readme_configs())
def test_readme_example_passes_offline(tmp_path: Path, text: str) -> None:
    """The README's example, verbatim, passes check-config --offline."""
    done = llmmon("check-config", "--offline", "-c", str(write(tmp_path, text)))
    assert done.returncode == 0, done.stderr


SUITE_LINE = '{"input": "What is 2 + 3?", "reference": "5", "scorer": "number"}\n'


@pytest.mark.parametrize("text", readme_configs())
def test_readme_example_passes_with_its_keys_and_files(tmp_path: Path, text: str) -> None:
    """With the variables it names set and the files it names present (moved under a
    temporary directory), the README's example passes the full check."""
    values = list(_walk(yaml.safe_load(text)))
    env = {v: "dummy-key" for k, v in values if k in ("api_key_env", "env")}
    assert env, "the example names no key variable"
    for key, value in values:
        if key in _FILE_KEYS:
            local = tmp_path / "files" / value.lstrip("/")
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_text("{}\n" if key == "web_config_file" else SUITE_LINE
                             if value.endswith(".jsonl") else "dummy\n")
            text = text.replace(value, str(local))
    done = llmmon("check-config", "-c", str(write(tmp_path, text)), env=env)
    assert done.returncode == 0, done.stderr


def test_readme_web_config_example_passes_offline(tmp_path: Path) -> None:
    """The README's web config example is well formed (its certificates are not there)."""
    web = next(b for b in re.findall(r"^```yaml\n(.*?)^```", README.read_text(), re.S | re.M)
               if b.startswith("tls_server_config:"))
    path = write(tmp_path, {"web_config_file": str(write(tmp_path, web, "web.yaml"))})
    assert llmmon("check-config", "--offline", "-c", str(path)).returncode == 0
    assert llmmon("check-config", "-c", str(path)).returncode == 2  # cert files: not there


@pytest.mark.parametrize("offline", [[], ["--offline"]])
def test_a_web_config_or_config_that_is_a_fifo_does_not_hang(tmp_path: Path,
                                                             offline: list[str]) -> None:
    """A FIFO (or a device) where the web config or the config file should be is refused
    at once, as not a regular file; a read of it would block until a writer came."""
    os.mkfifo(tmp_path / "web.yaml")
    path = write(tmp_path, {"web_config_file": str(tmp_path / "web.yaml")})
    found = problem_lines(llmmon("check-config", *offline, "-c", str(path)))
    assert found == [f"{tmp_path / 'web.yaml'}: is not a regular file"]
    os.mkfifo(tmp_path / "fifo.yaml")
    for config in (tmp_path / "fifo.yaml", Path("/dev/zero")):
        found = problem_lines(llmmon("check-config", *offline, "-c", str(config)))
        assert found == [f"{config}: is not a regular file"]


def test_a_key_pasted_as_a_yaml_key_is_shown_cut(tmp_path: Path) -> None:
    """A key pasted on a line of its own, which YAML reads as a mapping key, is an unknown
    key shown by its first 6 characters; a mistyped key is shown whole."""
    path = write(tmp_path, f"endpoints:\n  - name: a\n    provider: openai\n"
                           f"    url: http://127.0.0.1:8000/v1\n    model: m\n    {SECRET}:\n"
                           f"    intervl: 5s\n")
    found = problem_lines(llmmon("check-config", "-c", str(path)))
    assert found == ["endpoints[0] (a).sk-llm…: unknown key",
                     "endpoints[0] (a).intervl: unknown key"]


# --- healthcheck -----------------------------------------------------------------------


class _Healthz(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def healthz_server(context: ssl.SSLContext | None = None) -> Iterator[int]:
    """A stand-in for the daemon's /healthz on loopback; yields its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Healthz)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_healthcheck_needs_no_secrets_and_ignores_other_problems(tmp_path: Path) -> None:
    """Key variable unset, key file absent, an endpoint that does not validate: healthcheck
    still asks /healthz, and says 0 when it answers, 1 when nothing does."""
    def config(port: int) -> Path:
        return write(tmp_path, {"listen": f"127.0.0.1:{port}", "endpoints": [
            endpoint("k", api_key_env="UNSET_KEY_VAR"),
            endpoint("f", api_key_file=str(tmp_path / "missing"), interval="banana")]})

    with healthz_server() as port:
        done = llmmon("healthcheck", "-c", str(config(port)))
        assert done.returncode == 0, done.stderr
    assert llmmon("healthcheck", "-c", str(config(free_port()))).returncode == 1


def test_healthcheck_rejects_a_bad_listen(tmp_path: Path) -> None:
    """listen is what healthcheck needs: a bad one is a configuration error (2), named."""
    done = llmmon("healthcheck", "-c", str(write(tmp_path, {"listen": "nowhere"})))
    assert done.returncode == 2
    assert "listen: must be HOST:PORT" in done.stderr


def test_healthcheck_uses_tls_without_reading_the_certificates(tmp_path: Path) -> None:
    """With tls_server_config set, healthcheck asks over https; it does not load the
    certificate files, which it need not be able to read."""
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    web = write(tmp_path, {"tls_server_config": {"cert_file": str(tmp_path / "absent.crt"),
                                                 "key_file": str(tmp_path / "absent.key")}},
                "web.yaml")
    with healthz_server(context) as port:
        path = write(tmp_path, {"listen": f"127.0.0.1:{port}", "web_config_file": str(web)})
        done = llmmon("healthcheck", "-c", str(path))
    assert done.returncode == 0, done.stderr


def test_healthcheck_tries_both_schemes_when_the_web_config_cannot_be_read(
        tmp_path: Path) -> None:
    """A web config healthcheck cannot read leaves the scheme open: after plain http fails
    against a TLS server, https answers."""
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with healthz_server(context) as port:
        path = write(tmp_path, {"listen": f"127.0.0.1:{port}",
                                "web_config_file": str(tmp_path / "unreadable.yaml")})
        done = llmmon("healthcheck", "-c", str(path))
    assert done.returncode == 0, done.stderr
