"""Real servers on loopback, once per test session: llama.cpp serving SmolLM2-135M
(scripts/install-llama) and LiteLLM's proxy in front of it (scripts/install-litellm).

A tool that is not installed skips its tests, or fails them under scripts/test
(LLMMONTEST_REQUIRE_ALL), which installs both."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import reported_port, wait_for

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "llmmon-test"
LLAMA_DIR = Path(os.environ.get("LLMMONTEST_LLAMA_DIR") or CACHE / "llama")
LITELLM_DIR = Path(os.environ.get("LLMMONTEST_LITELLM_DIR") or CACHE / "litellm")
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LITELLM_KEY = "sk-litellm-master-3f9a61"  # the proxy's master key, a test value
N_CTX = 512


def _missing(message: str) -> None:
    if os.environ.get("LLMMONTEST_REQUIRE_ALL"):
        pytest.fail(message)  # scripts/test installs it, so under it this is a failure
    pytest.skip(message)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@dataclass(frozen=True)
class Llama:
    base: str  # http://127.0.0.1:PORT
    model_path: str  # what it lists at /v1/models

    @property
    def url(self) -> str:
        return self.base + "/v1"


@contextmanager
def _server(argv: list[str], log_path: Path, listening: str, health: str, what: str,
            seconds: float) -> Iterator[str]:
    """A server started on port 0, its base URL once it names its port in its log
    (``listening`` captures it) and answers ``health``; stopped afterwards."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        port = reported_port(proc, log_path, listening, what, seconds)
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert proc.poll() is None, f"{what} exited"
            try:
                return httpx.get(base + health, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, seconds, what)
        yield base
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Llama]:
    python, model = LLAMA_DIR / "venv/bin/python", LLAMA_DIR / MODEL_FILE
    if not (python.exists() and model.exists()):
        _missing(f"no llama.cpp server under {LLAMA_DIR}: run scripts/install-llama")
    # --interrupt_requests False: by default a second request cuts a running stream short.
    # uvicorn (>= 0.14; the server extra asks for >= 0.22) names the port it got.
    with _server([str(python), "-m", "llama_cpp.server", "--model", str(model), "--host",
                  "127.0.0.1", "--port", "0", "--n_ctx", str(N_CTX),
                  "--interrupt_requests", "False"],
                 tmp_path_factory.mktemp("llama") / "server.log",
                 r"Uvicorn running on http://127\.0\.0\.1:(\d+)", "/v1/models",
                 "the llama.cpp server", 90) as base:
        yield Llama(base, str(model))


@pytest.fixture(scope="session")
def llama_cpp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Llama]:
    """llama.cpp's own llama-server (scripts/install-llama builds it) on the same model: its
    /v1/models `meta`, its `timings` and its prompt cache are what llama.cpp users see."""
    binary, model = LLAMA_DIR / "bin/llama-server", LLAMA_DIR / MODEL_FILE
    if not (binary.exists() and model.exists()):
        _missing(f"no llama-server under {LLAMA_DIR}: run scripts/install-llama")
    with _server([str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", "0",
                  "-c", "2048", "--threads", "1", "--parallel", "1"],
                 tmp_path_factory.mktemp("llama-server") / "server.log",
                 r"listening on http://127\.0\.0\.1:(\d+)", "/health", "llama-server",
                 60) as base:
        yield Llama(base, str(model))


@pytest.fixture(scope="session")
def litellm_proxy(llama_server: Llama, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[str]:
    """LiteLLM's proxy: `smol` → the llama.cpp server, `broken` → a closed port. Its
    /v1/messages speaks Anthropic's format over the upstream's chat completions."""
    binary = LITELLM_DIR / "venv/bin/litellm"
    if not binary.exists():
        _missing(f"no LiteLLM under {LITELLM_DIR}: run scripts/install-litellm")
    workdir = tmp_path_factory.mktemp("litellm")
    upstream = {"api_base": llama_server.url, "api_key": "unused"}
    config = {
        "model_list": [
            {"model_name": "smol", "litellm_params": {"model": "openai/smollm2", **upstream}},
            {"model_name": "broken", "litellm_params": {
                "model": "openai/smollm2", "api_base": "http://127.0.0.1:9/v1",
                "api_key": "unused"}},
        ],
        "general_settings": {"master_key": LITELLM_KEY},
        "litellm_settings": {"use_chat_completions_url_for_anthropic_messages": True,
                             "num_retries": 0},
        "router_settings": {"num_retries": 0},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    # Everything LiteLLM would fetch from the internet, read from its package instead.
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "LITELLM_LOCAL_BLOG_POSTS": "True", "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
           "LITELLM_LOCAL_POLICY_TEMPLATES": "True", "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True"}
    env.pop("DATABASE_URL", None)
    port = _free_port()
    log_path = workdir / "litellm.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([str(binary), "--config", str(workdir / "config.yaml"),
                                 "--host", "127.0.0.1", "--port", str(port)],
                                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    base = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            assert proc.poll() is None, "LiteLLM exited:\n" + log_path.read_text()[-2000:]
            try:
                return httpx.get(base + "/health/liveliness", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, 120, "the LiteLLM proxy")
        yield base
    finally:
        _stop(proc)


def _free_port() -> int:
    """A port nothing listens on now (LiteLLM cannot report one it chose itself)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
