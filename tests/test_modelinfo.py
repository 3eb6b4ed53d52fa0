"""What servers say about their models: each server's description on literal payloads (real
shapes, and junk), the fixed quantisation labels, and fetch_model_info against a real loopback
HTTP server that answers well, badly, hugely or never."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmmon.bench.model import BenchRun, load_run
from llmmon.bench.model import ModelInfo as BenchModelInfo
from llmmon.probe.modelinfo import (
    INFO_LIMIT,
    QUANTIZATIONS,
    ModelInfo,
    bits_per_weight,
    complete,
    fetch_model_info,
    from_name,
    from_ollama,
    from_ollama_ps,
    from_ollama_show,
    from_openai_models,
    from_tgi_info,
    merge,
    parameters_from,
    quantization_label,
)
from llmmon.probe.transport import make_client
from tests.conftest import make_endpoint

# --- llama.cpp, vLLM and other OpenAI-style listings -------------------------------------

# llama-server (2025): an Ollama-style `models` list and the OpenAI `data` list in one body;
# meta has the slot's n_ctx and the file type's name.
LLAMA_SERVER = {
    "models": [{"name": "qwen3", "model": "qwen3", "details": {"parameter_size": "",
                                                               "quantization_level": ""}}],
    "object": "list",
    "data": [{"id": "qwen3", "aliases": ["qwen3-4b"], "tags": [], "object": "model",
              "created": 1760000000, "owned_by": "llamacpp",
              "meta": {"vocab_type": 2, "n_vocab": 151936, "n_ctx": 4096, "n_ctx_train": 40960,
                       "n_embd": 2560, "n_params": 4022468096, "size": 2497280256,
                       "ftype": "Q4_K - Medium"}}],
}


def test_llama_server_meta_with_slot_context_and_file_type() -> None:
    info = from_openai_models(LLAMA_SERVER, "qwen3-4b")  # one of its aliases
    assert info == ModelInfo(served_model="qwen3", parameters=4022468096, size_bytes=2497280256,
                             context_length=4096, quantization="Q4_K - Medium",
                             source="/v1/models")
    assert quantization_label(info.quantization) == "Q4_K_M"


def test_llama_server_router_lists_models_without_meta() -> None:
    """Router mode lists every model it can load, with a status and nothing more."""
    data = {"object": "list", "data": [
        {"id": name, "object": "model", "owned_by": "llamacpp", "status": {"value": "loaded"}}
        for name in ("gemma-3-4b", "qwen3-8b", "llama-3.2-1b")]}
    assert from_openai_models(data, "qwen3-8b") == ModelInfo(served_model="qwen3-8b",
                                                             source="/v1/models")
    assert from_openai_models(data, "mistral-7b") is None


def test_vllm_listing_of_a_base_model_and_its_lora() -> None:
    base = "meta-llama/Llama-3.1-8B-Instruct"
    data = {"object": "list", "data": [
        {"id": base, "object": "model", "owned_by": "vllm", "root": base, "parent": None,
         "max_model_len": 131072, "permission": [{"id": "modelperm-1"}]},
        {"id": "sql-lora", "object": "model", "owned_by": "vllm", "root": "/adapters/sql",
         "parent": base, "max_model_len": 32768}]}
    assert from_openai_models(data, "sql-lora") == ModelInfo(
        served_model="sql-lora", context_length=32768, source="/v1/models")


def test_only_the_configured_model_of_a_long_listing_counts() -> None:
    """A gateway lists hundreds; the exact name wins over a fuzzy one, a fuzzy one (a dated
    snapshot, the served_model pattern) over none, and none over the first listed."""
    data = {"data": [{"id": f"model-{i}", "max_model_len": 1000 + i} for i in range(300)]
            + [{"id": "gpt-4o-2024-08-06", "max_model_len": 128000},
               {"id": "gpt-4o", "max_model_len": 64000}]}
    assert from_openai_models(data, "model-137") == ModelInfo(
        served_model="model-137", context_length=1137, source="/v1/models")
    assert from_openai_models(data, "gpt-4o") == ModelInfo(
        served_model="gpt-4o", context_length=64000, source="/v1/models")
    dated = {"data": data["data"][:-1]}
    assert from_openai_models(dated, "gpt-4o") == ModelInfo(
        served_model="gpt-4o-2024-08-06", context_length=128000, source="/v1/models")
    assert from_openai_models(data, "house-model", pattern=r"model-2\d\d") == ModelInfo(
        served_model="model-200", context_length=1200, source="/v1/models")
    assert from_openai_models(data, "absent") is None


@pytest.mark.parametrize("data", [
    None, "data", [], {}, {"data": "x"}, {"data": {}}, {"data": []}, {"data": [1, "a", None]},
    {"data": [{"id": 5, "meta": []}]},  # the only entry: a number for a name, meta a list
    {"data": [{"id": "m", "meta": {"n_params": True, "size": -1, "n_ctx_train": "8192",
                                   "n_ctx": float("nan"), "ftype": 4}}]},
    {"data": [{"id": "m", "max_model_len": float("inf"), "meta": {"n_params": 2 ** 60}}]},
    {"data": [{"id": ["m"], "meta": {"meta": {"meta": {}}}}, {"id": {"id": "m"}}]},
])
def test_junk_listings_say_nothing(data: Any) -> None:
    info = from_openai_models(data, "m")
    assert info is None or info == ModelInfo(served_model="m", source="/v1/models")


def test_numbers_are_checked_for_type_and_range() -> None:
    meta = {"n_params": 8030261248.0, "size": 0, "n_ctx_train": False}
    info = from_openai_models({"data": [{"id": "m", "meta": meta}]}, "m")
    assert info == ModelInfo(served_model="m", parameters=8030261248, source="/v1/models")
    long = "x" * 5000
    assert from_openai_models({"data": [{"id": long}]}, "m") == ModelInfo(
        served_model="x" * 1000, source="/v1/models")  # the only entry, its name cut short


# --- Ollama -------------------------------------------------------------------------------

OLLAMA_SHOW = {
    "modelfile": "FROM /root/.ollama/models/blobs/sha256-...", "parameters": "stop <|im_end|>",
    "template": "{{ .Prompt }}",
    "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                "parameter_size": "134.52M", "quantization_level": "F16"},
    "model_info": {"general.architecture": "llama", "general.file_type": 1,
                   "general.parameter_count": 134515008, "llama.context_length": 8192,
                   "llama.embedding_length": 576, "tokenizer.ggml.model": "gpt2"},
    "capabilities": ["completion"],
}
OLLAMA_PS = {"models": [
    {"name": "qwen2.5:7b", "model": "qwen2.5:7b", "size": 6_000_000_000, "size_vram": 0,
     "details": {"parameter_size": "7.6B", "quantization_level": "Q4_K_M"},
     "expires_at": "2025-01-01T00:00:00Z", "context_length": 32768},
    {"name": "smollm2:135m", "model": "smollm2:135m", "size": 1_003_000_000,
     "size_vram": 900_000_000, "digest": "sha256:...",
     "details": {"parameter_size": "134.52M", "quantization_level": "F16"},
     "expires_at": "2025-01-01T00:00:00Z", "context_length": 4096},
]}


def test_ollama_show() -> None:
    assert from_ollama_show(OLLAMA_SHOW, "smollm2:135m") == ModelInfo(
        parameters=134515008, context_length=8192, quantization="F16", source="/api/show")
    # Without model_info (an old Ollama): the rounded size; no window.
    old = {"details": {"parameter_size": "134.52M", "quantization_level": "F16"}}
    assert from_ollama_show(old, "m") == ModelInfo(parameters=134520000, quantization="F16",
                                                    source="/api/show")


@pytest.mark.parametrize("data", [
    None, [], "x", {}, {"details": [], "model_info": "x"},
    {"details": {"parameter_size": "many", "quantization_level": 4},
     "model_info": {"general.parameter_count": "8B", "general.architecture": 7,
                    "a.context_length": 1, "b.context_length": 2}},  # which of two windows?
    {"model_info": {"general.parameter_count": -3, "general.architecture": "llama",
                    "llama.context_length": True}},
])
def test_ollama_show_junk(data: Any) -> None:
    assert from_ollama_show(data, "m") is None


def test_ollama_ps_finds_the_configured_model_among_the_loaded() -> None:
    assert from_ollama_ps(OLLAMA_PS, "smollm2:135m") == ModelInfo(
        served_model="smollm2:135m", parameters=134520000, size_bytes=1_003_000_000,
        size_vram_bytes=900_000_000, context_length=4096, quantization="F16", source="/api/ps")
    cpu = from_ollama_ps(OLLAMA_PS, "qwen2.5:7b")
    assert cpu is not None
    assert cpu.size_vram_bytes == 0  # all of it on the CPU: said, and kept
    latest = {"models": [{"name": "llama3:latest", "size": 5, "size_vram": 5}]}
    assert from_ollama_ps(latest, "llama3") is not None  # no tag is ":latest"
    # Another model loaded, or none: nothing about this one (never "the only one listed").
    assert from_ollama_ps({"models": [OLLAMA_PS["models"][0]]}, "smollm2:135m") is None
    assert from_ollama_ps({"models": []}, "smollm2:135m") is None
    junk = {"models": [{"name": "m", "size": -1, "size_vram": "all", "context_length": None}]}
    assert from_ollama_ps(junk, "m") == ModelInfo(served_model="m", source="/api/ps")


def test_ollama_merges_show_and_ps() -> None:
    info = from_ollama(OLLAMA_SHOW, OLLAMA_PS, "smollm2:135m")
    assert info == ModelInfo(served_model="smollm2:135m", parameters=134515008,
                             size_bytes=1_003_000_000, size_vram_bytes=900_000_000,
                             context_length=4096,  # as loaded, not the trained 8192
                             quantization="F16", source="/api/ps + /api/show")
    assert from_ollama(OLLAMA_SHOW, {"models": []}, "smollm2:135m") == from_ollama_show(
        OLLAMA_SHOW, "smollm2:135m")  # not loaded: what /api/show says
    assert from_ollama(None, OLLAMA_PS, "smollm2:135m") == from_ollama_ps(OLLAMA_PS,
                                                                          "smollm2:135m")
    assert from_ollama(None, None, "m") is None


# --- TGI ------------------------------------------------------------------------------------


def test_tgi_info_of_each_version() -> None:
    v1 = {"model_id": "bigscience/bloom-560m", "model_sha": "e985a63", "model_dtype":
          "torch.float16", "model_device_type": "cuda", "max_input_length": 1024,
          "max_total_tokens": 2048, "max_concurrent_requests": 128, "version": "1.4.5"}
    assert from_tgi_info(v1) == ModelInfo(served_model="bigscience/bloom-560m",
                                          context_length=2048, quantization="torch.float16",
                                          source="/info")
    assert quantization_label("torch.float16") == "F16"
    v3 = {"model_id": "mistralai/Mistral-7B-Instruct-v0.3", "model_sha": None,
          "model_pipeline_tag": "text-generation", "max_input_tokens": 8191,
          "max_total_tokens": 8192, "router": "text-generation-router", "version": "3.3.4"}
    assert from_tgi_info(v3) == ModelInfo(served_model="mistralai/Mistral-7B-Instruct-v0.3",
                                          context_length=8192, source="/info")
    assert from_tgi_info({"max_input_tokens": 4096}) == ModelInfo(context_length=4096,
                                                                  source="/info")
    for junk in (None, [], {}, {"model_id": 3, "max_total_tokens": "8192", "quantize": {}}):
        assert from_tgi_info(junk) is None


# --- names, merging, sizes ---------------------------------------------------------------


def test_complete_says_when_the_name_was_used() -> None:
    served = ModelInfo(served_model="SmolLM2-135M-Instruct.Q4_1.gguf", context_length=8192,
                       source="/v1/models")
    assert complete(served, "x") == ModelInfo(
        served_model="SmolLM2-135M-Instruct.Q4_1.gguf", parameters=135_000_000,
        context_length=8192, quantization="Q4_1", source="/v1/models + model name")
    said = ModelInfo(parameters=7, quantization="F16", source="/info")
    assert complete(said, "Llama-3.1-8B-Q4_0") == said  # the server's word stands
    assert complete(ModelInfo(), "gpt-4o-mini") == ModelInfo()
    assert from_name("x" * 100_000 + "-8B") == ModelInfo()  # a name is read only so far


def test_merge_keeps_the_first_and_fills_from_the_second() -> None:
    a = ModelInfo(served_model="a", context_length=4096, source="/api/ps")
    b = ModelInfo(served_model="b", parameters=9, context_length=8192, source="/api/show")
    assert merge(a, b) == ModelInfo(served_model="a", parameters=9, context_length=4096,
                                    source="/api/ps + /api/show")


@pytest.mark.parametrize(("text", "count"), [
    ("135M", 135_000_000), ("8.0B", 8_000_000_000), ("8.03B", 8_030_000_000), (" 1.5 t ", 1.5e12),
    (7_000, 7_000), ("1.2.3B", None), ("9" * 400 + "B", None), ("", None), (True, None),
    (-5, None), ("8B parameters", None), (None, None), (float("inf"), None),
])
def test_parameters_from(text: Any, count: float | None) -> None:
    assert parameters_from(text) == count


# --- quantisation labels ----------------------------------------------------------------------


@pytest.mark.parametrize(("said", "label"), [
    (None, "unknown"), ("", "unknown"), ("  ", "unknown"), ("unknown", "unknown"),
    # Ollama's quantization_level
    ("Q4_K_M", "Q4_K_M"), ("F16", "F16"), ("BF16", "BF16"), ("Q8_0", "Q8_0"),
    ("MXFP4_MOE", "MXFP4"), ("Q3_K_L", "Q3_K_L"), ("Q4_1_F16", "other"),
    # llama.cpp's file type names (meta.ftype, /props model_ftype)
    ("Q4_K - Medium", "Q4_K_M"), ("Q5_K - Small", "Q5_K_S"), ("Q3_K - Large", "Q3_K_L"),
    ("Q2_K - Medium", "Q2_K"), ("Q2_K - Small", "Q2_K_S"), ("IQ4_XS - 4.25 bpw", "IQ4_XS"),
    ("IQ3_S mix - 3.66 bpw", "IQ3_M"), ("TQ1_0 - 1.69 bpw ternary", "TQ1_0"), ("all F32", "F32"),
    ("MXFP4 MoE", "MXFP4"), ("Q4_0 (guessed)", "Q4_0"), ("unknown, may not work", "other"),
    # TGI's --quantize and model_dtype, vLLM's method names
    ("bitsandbytes", "BITSANDBYTES"), ("bitsandbytes-nf4", "BITSANDBYTES"),
    ("bitsandbytes-fp4", "BITSANDBYTES"), ("gptq", "GPTQ"), ("awq", "AWQ"), ("fp8", "FP8"),
    ("eetq", "EETQ"), ("exl2", "EXL2"), ("awq_marlin", "AWQ"), ("gptq_marlin", "GPTQ"),
    ("fbgemm_fp8", "FP8"), ("experts_int8", "INT8"), ("compressed-tensors", "other"),
    ("marlin", "other"), ("torch.float16", "F16"), ("float16", "F16"), ("bfloat16", "BF16"),
    ("torch.bfloat16", "BF16"), ("torch.float32", "F32"), ("float8_e4m3fn", "FP8"),
    # names, any case
    ("q4_k_m", "Q4_K_M"), ("iq2_xxs", "IQ2_XXS"), ("Awq", "AWQ"), ("INT4", "INT4"),
    ("<script>", "other"), ("Q4_K_M" * 50, "other"), ("a\nb", "other"),
])
def test_quantization_label(said: str | None, label: str) -> None:
    assert quantization_label(said) == label


def test_the_vocabulary_is_closed() -> None:
    """Each label is its own label, so mapping twice is harmless; no label repeats."""
    assert len(set(QUANTIZATIONS)) == len(QUANTIZATIONS)
    assert {"other", "unknown"} < set(QUANTIZATIONS)
    assert all(quantization_label(label) == label for label in QUANTIZATIONS)


@given(st.text(max_size=200))
def test_any_text_gets_a_label_of_the_vocabulary(text: str) -> None:
    assert quantization_label(text) in QUANTIZATIONS


def test_bits_per_weight_from_the_block_layouts() -> None:
    # ggml-common.h: 32 weights in 16 bytes of nibbles + f16 scale (+ f16 minimum for _1).
    assert bits_per_weight("Q4_0") == (16 + 2) * 8 / 32 == 4.5
    assert bits_per_weight("Q4_1") == (16 + 2 + 2) * 8 / 32 == 5.0
    assert bits_per_weight("Q8_0") == (32 + 2) * 8 / 32 == 8.5
    assert bits_per_weight("Q6_K") == (128 + 64 + 16 + 2) * 8 / 256 == 6.5625
    assert bits_per_weight("IQ4_XS") == (2 + 2 + 4 + 128) * 8 / 256 == 4.25
    assert bits_per_weight("BF16") == 16.0
    for mix in ("Q4_K_M", "Q5_K_S", "IQ3_M", "AWQ", "GPTQ", "INT4", "other", "unknown"):
        assert bits_per_weight(mix) is None  # no single figure: none given
    assert bits_per_weight("nonsense") is None


def test_bench_records_keep_their_shape() -> None:
    """The bench record holds the same ModelInfo; one saved before size_vram_bytes loads."""
    assert BenchModelInfo is ModelInfo
    run = BenchRun(endpoint={}, settings={}, objectives={}, started="2025-01-01T00:00:00Z",
                   model=ModelInfo(served_model="m", parameters=1, source="/info"))
    saved = json.loads(json.dumps(run.as_dict()))
    assert list(saved["model"]) == ["served_model", "parameters", "size_bytes",
                                    "context_length", "quantization", "source",
                                    "size_vram_bytes"]
    del saved["model"]["size_vram_bytes"]
    assert load_run(saved).model == ModelInfo(served_model="m", parameters=1, source="/info")


# --- fetch_model_info over a real socket ---------------------------------------------------

HANG, FLOOD = "hang", "flood"  # never answer; a body far above the cap, sent without end


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


def answer(data: Any) -> Answer:
    return Answer(body=json.dumps(data).encode())


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class CannedServer:
    """HTTP/1.1 on loopback, keep-alive, each path answered as ``routes`` says."""

    def __init__(self, routes: dict[str, Answer | str]) -> None:
        self.routes, self.seen = routes, list[Seen]()
        self.flooded = 0  # bytes of FLOOD written before the client hung up
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                method, target, _ = head[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip()
                           for k, _, v in (line.partition(":") for line in head[1:] if line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                path = target.split("?", 1)[0]
                self.seen.append(Seen(method, path, headers, body))
                reply = self.routes.get(path, Answer(404, b'{"error": "not found"}'))
                if reply == HANG:
                    await reader.read()  # until the client gives up and hangs up
                    return
                if reply == FLOOD:
                    size = 64 * INFO_LIMIT
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n[" % (size + 1))
                    for _ in range(size // 65536):
                        writer.write(b"1," * 32768)
                        await writer.drain()
                        self.flooded += 65536
                    return
                assert isinstance(reply, Answer)
                lines = [f"HTTP/1.1 {reply.status} X", f"Content-Length: {len(reply.body)}",
                         *(f"{k}: {v}" for k, v in reply.headers.items())]
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + reply.body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away
        finally:
            self._writers.discard(writer)
            writer.close()


class Canned:
    """The test's CannedServers: ``await canned.start(routes)`` gives a base URL."""

    def __init__(self) -> None:
        self.servers: list[CannedServer] = []

    async def start(self, routes: dict[str, Answer | str]) -> str:
        server = CannedServer(routes)
        self.servers.append(server)
        return f"http://127.0.0.1:{await server.start()}"


@pytest.fixture
async def canned() -> AsyncIterator[Canned]:
    servers = Canned()
    yield servers
    for server in servers.servers:
        await server.close()


async def fetch(url: str, budget: float = 5.0, **kw: Any) -> tuple[ModelInfo, float]:
    """fetch_model_info with ``budget`` seconds, on the endpoint's own client as the daemon
    asks; how long it took. ``kw``: the endpoint's config (its own ``timeout`` among them)."""
    endpoint = make_endpoint(url, **kw)
    async with make_client(endpoint) as client:
        start = time.monotonic()
        info = await fetch_model_info(client, endpoint, budget)
    return info, time.monotonic() - start


async def test_llama_cpp_asked_with_the_endpoints_key_and_raw(
        canned: Canned, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELINFO_KEY", "sk-modelinfo-0123456789")
    url = await canned.start({"/v1/models": answer(LLAMA_SERVER)})
    info, _ = await fetch(url + "/v1", model="qwen3", api_key_env="MODELINFO_KEY",
                         headers={"X-Team": "search"})
    assert info == from_openai_models(LLAMA_SERVER, "qwen3")
    (seen,) = canned.servers[0].seen
    assert (seen.method, seen.path) == ("GET", "/v1/models")
    assert seen.headers["authorization"] == "Bearer sk-modelinfo-0123456789"
    assert seen.headers["accept-encoding"] == "identity"
    assert seen.headers["x-team"] == "search"


async def test_ollama_asked_for_show_and_ps(canned: Canned) -> None:
    url = await canned.start({"/api/show": answer(OLLAMA_SHOW), "/api/ps": answer(OLLAMA_PS)})
    info, _ = await fetch(url, provider="ollama", model="smollm2:135m")
    assert info == from_ollama(OLLAMA_SHOW, OLLAMA_PS, "smollm2:135m")
    show, ps = canned.servers[0].seen
    assert (show.method, show.path, json.loads(show.body)) == ("POST", "/api/show",
                                                               {"model": "smollm2:135m"})
    assert (ps.method, ps.path) == ("GET", "/api/ps")


async def test_ollama_keeps_what_show_said_when_ps_never_answers(canned: Canned) -> None:
    url = await canned.start({"/api/show": answer(OLLAMA_SHOW), "/api/ps": HANG})
    info, took = await fetch(url, 0.5, provider="ollama", model="smollm2:135m", timeout="30s")
    assert info == from_ollama_show(OLLAMA_SHOW, "smollm2:135m")
    assert took < 5  # the call's own bound, not the endpoint's 30 s


async def test_tgi_info(canned: Canned) -> None:
    url = await canned.start({"/info": answer({"model_id": "org/Qwen2.5-7B-Instruct-AWQ",
                                         "max_total_tokens": 4096})})
    info, _ = await fetch(url, provider="tgi", model="tgi")
    assert info == ModelInfo(served_model="org/Qwen2.5-7B-Instruct-AWQ", context_length=4096,
                             parameters=7_000_000_000, quantization="AWQ",
                             source="/info + model name")


async def test_a_compressed_answer_despite_identity_is_read(canned: Canned) -> None:
    body = gzip.compress(json.dumps({"data": [{"id": "m", "max_model_len": 2048}]}).encode())
    gzipped = Answer(body=body, headers={"Content-Encoding": "gzip"})
    url = await canned.start({"/v1/models": gzipped})
    info, _ = await fetch(url + "/v1")
    assert info.context_length == 2048


# What a model named "Llama-3.1-8B-Instruct" is said to be when its server says nothing.
GUESS = ModelInfo(parameters=8_000_000_000, source="model name")


@pytest.mark.parametrize("reply", [
    Answer(500, b'{"data": [{"id": "m", "max_model_len": 1}]}'),
    Answer(404, b"not found", {"Content-Type": "text/plain"}),
    Answer(200, b"<html><body>Welcome to nginx!</body></html>", {"Content-Type": "text/html"}),
    Answer(200, b"[1, 2, 3]"),
    Answer(200, b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),  # too deep to parse
    Answer(200, b'{"data": [{"id": "m", "max_model_len": ' + b"9" * 5000 + b"}]}"),
    Answer(200, b'{"data": [{"id": "\xff\xfe"}]}'),  # not UTF-8
    Answer(200, b'{"data": [{"id": "m", "max_model_len": 1}]}', {"Content-Encoding": "br"}),
    Answer(200, b"\x1f\x8b" + b"\x00" * 64, {"Content-Encoding": "gzip"}),  # corrupt gzip
    Answer(200, b'{"padding": "' + b"x" * INFO_LIMIT + b'", "data": [{"id": "m"}]}'),
    FLOOD,
], ids=["500", "404", "html", "not-an-object", "deep", "long-number", "not-utf8", "brotli",
        "corrupt-gzip", "over-the-cap", "flood"])
async def test_misbehaving_servers_leave_only_the_name(canned: Canned, reply: Answer | str) -> None:
    url = await canned.start({"/v1/models": reply})
    info, took = await fetch(url + "/v1", model="Llama-3.1-8B-Instruct", timeout="30s")
    assert info == GUESS
    assert took < 5
    # The flood is left at the cap: what the kernel's buffers held, not its 64 MiB.
    assert canned.servers[0].flooded < 16 * INFO_LIMIT


async def test_a_server_that_never_answers_is_given_up_on_in_time(canned: Canned) -> None:
    url = await canned.start({"/v1/models": HANG})
    info, took = await fetch(url + "/v1", 0.3, model="Llama-3.1-8B-Instruct", timeout="30s")
    assert info == GUESS
    assert 0.25 < took < 5
    assert len(canned.servers[0].seen) == 1  # it was asked, then left


async def test_nothing_is_asked_without_a_route_or_a_key(canned: Canned, tmp_path: Path) -> None:
    url = await canned.start({})
    info, _ = await fetch(url + "/v1", provider="anthropic", model="claude-sonnet-4-0")
    assert info == ModelInfo()
    key = tmp_path / "key"
    key.write_text("sk-file-0123456789")
    endpoint = make_endpoint(url + "/v1", model="Llama-3.1-8B-Instruct", api_key_file=str(key))
    key.unlink()  # the key file gone after the config was read: no request, no exception
    async with make_client(endpoint) as client:
        assert await fetch_model_info(client, endpoint) == GUESS
    assert canned.servers[0].seen == []


def test_model_info_fields_are_json() -> None:
    """The daemon and the bench record both serialise it as a plain dict."""
    info = from_ollama(OLLAMA_SHOW, OLLAMA_PS, "smollm2:135m")
    assert info is not None
    assert json.loads(json.dumps(asdict(info))) == asdict(info)
