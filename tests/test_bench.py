"""`llmmon bench` and `llmmon compare` as a user runs them: subprocesses against simulator
processes and the real llama.cpp server, over real sockets; and the parsing of what model
servers say about themselves, on literal inputs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from llmmon.bench.model import load_run
from llmmon.bench.server import read_gauges
from llmmon.bench.workload import dataset, synthetic
from llmmon.probe.modelinfo import (
    from_name,
    from_ollama_show,
    from_openai_models,
    from_tgi_info,
    parameters_from,
)
from tests.conftest import SimProcess, spawn_simulator, wait_for_async
from tests.test_bench_report import _chromium, png_info

PYTHON = sys.executable


def llmmon(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-m", "llmmon", *args], capture_output=True, text=True,
                          timeout=timeout)


def metric(base: str, name: str) -> float:
    text = httpx.get(base.removesuffix("/v1") + "/metrics", timeout=5).text
    return next(float(line.split()[-1]) for line in text.splitlines()
                if line.startswith(name))


# --- bench --------------------------------------------------------------------------------


def test_bench_sweeps_the_simulator_and_writes_every_report(
        simulator_process: SimProcess, tmp_path: Path) -> None:
    """A 1→8 concurrency sweep: four steps of all-successful requests, the server's own
    gauges sampled, the throughput the server's own token count, and four reports."""
    sim = simulator_process
    sim.configure(model="sim-model")
    sent_before = metric(sim.base, "llmmon_sim_tokens_sent_total")
    done = llmmon("bench", "--url", sim.base, "--model", "sim-model", "--concurrency",
                  "1,2,4,8", "--requests", "16", "--warmup", "0", "--output-tokens", "12",
                  "--input-tokens", "32", "--server-metrics",
                  sim.base.removesuffix("/v1") + "/metrics", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stdout + done.stderr
    sent = metric(sim.base, "llmmon_sim_tokens_sent_total") - sent_before
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["bench.csv", "bench.html", "bench.json", "bench.md"]
    run = load_run(json.loads((tmp_path / "out/bench.json").read_text()))
    assert [s.load for s in run.steps] == [1, 2, 4, 8]
    assert all(s.requests == s.succeeded == 16 for s in run.steps)
    # every token the server sent is counted, and only those
    assert sum(s.output_tokens for s in run.steps) == sent
    assert run.model.served_model == "sim-model"
    eight = run.steps[-1]
    assert eight.server is not None
    assert eight.server.samples >= 1
    assert (eight.server.running_max or 0) >= 2  # the server saw the concurrency
    assert eight.achieved_concurrency > 4
    # more concurrency, more throughput, against a server that does not slow down
    assert eight.output_tokens_per_second > 3 * run.steps[0].output_tokens_per_second
    assert len(eight.records) == 16
    assert "step 4/4: concurrency 8: 16/16 ok" in done.stderr
    assert run.knee == 8
    csv_rows = (tmp_path / "out/bench.csv").read_text().splitlines()
    assert len(csv_rows) == 5
    page = (tmp_path / "out/bench.html").read_text()
    assert sorted(re.findall(r'data-plot="(\w+)"', page)) == [
        "errors", "itl", "pareto", "throughput", "ttft"]
    shot = screenshot(tmp_path / "out/bench.html", tmp_path)
    width, height, _, colourful = png_info(shot)
    assert (width, height) == (1280, 2400)
    assert colourful > 5_000, "the plots' coloured lines are missing from the rendered page"


def screenshot(page: Path, tmp_path: Path) -> bytes:
    """The page as headless Chromium draws it (LLMMONTEST_SCREENSHOT=FILE keeps a copy)."""
    shot = tmp_path / "report.png"
    subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--disable-dev-shm-usage", "--no-first-run", f"--user-data-dir={tmp_path / 'prof'}",
         f"--screenshot={shot}", "--window-size=1280,2400", page.as_uri()],
        check=True, capture_output=True, timeout=150, env={**os.environ, "HOME": str(tmp_path)})
    if keep := os.environ.get("LLMMONTEST_SCREENSHOT"):
        shutil.copyfile(shot, keep)
    return shot.read_bytes()


def test_bench_rate_mode_keeps_its_arrivals(simulator_process: SimProcess,
                                            tmp_path: Path) -> None:
    """At 20 requests/s, 20 requests start over about a second, whatever their latency."""
    done = llmmon("bench", "--url", simulator_process.base, "--model", "m", "--rate", "20",
                  "--requests", "20", "--warmup", "0", "--output-tokens", "4",
                  "--format", "json", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    (step,) = load_run(json.loads((tmp_path / "bench.json").read_text())).steps
    starts = [r.start for r in step.records]
    assert step.mode == "rate"
    assert 0.85 <= max(starts) - min(starts) <= 1.3  # 19 gaps of 50 ms


def test_bench_refuses_bad_usage_by_name(tmp_path: Path) -> None:
    for args, says in ((["--concurrency", "1,x"], "--concurrency"),
                       (["--concurrency", "1", "--rate", "2"], "not both"),
                       (["--concurrency", "0"], "above 0")):
        done = llmmon("bench", "--url", "http://127.0.0.1:9/v1", "--model", "m", *args,
                      "--out", str(tmp_path))
        assert done.returncode == 2
        assert says in done.stderr


def test_bench_against_llama_cpp(llama_server: Any, tmp_path: Path) -> None:
    """The real llama.cpp server (SmolLM2, CPU): a 1→8 sweep with every report. Its Python
    server lists only the model file, so size and quantisation come from the file's name."""
    model = Path(llama_server.model_path).name  # llama.cpp lists its file's path
    done = llmmon("bench", "--url", llama_server.url, "--model", model,
                  "--concurrency", "1,2,4,8", "--requests", "8", "--warmup", "1",
                  "--output-tokens", "8", "--input-tokens", "24", "--out", str(tmp_path),
                  timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    run = load_run(json.loads((tmp_path / "bench.json").read_text()))
    assert [s.load for s in run.steps] == [1, 2, 4, 8]
    assert all(s.succeeded == 8 for s in run.steps), [s.errors for s in run.steps]
    assert run.model.parameters == 135_000_000
    assert run.model.quantization == "Q4_1"
    assert run.model.source == "/v1/models + model name"
    assert all(s.ttft.p50 and s.output_tokens_per_second > 0 for s in run.steps)
    assert {p.name for p in tmp_path.iterdir()} >= {"bench.json", "bench.csv", "bench.md",
                                                     "bench.html"}


# --- compare --------------------------------------------------------------------------------


def _two_endpoints(tmp_path: Path, a: str, b: str) -> Path:
    common = {"provider": "openai", "model": "m", "timeout": "10s"}
    path = tmp_path / "endpoints.yaml"
    path.write_text(yaml.safe_dump({"endpoints": [{**common, "name": "a", "url": a},
                                                  {**common, "name": "b", "url": b}]}))
    return path


COMPARE = ("--concurrency", "4", "--requests", "120", "--warmup", "2", "--output-tokens", "6",
           "--input-tokens", "16", "--metrics", "ttft_p50,ttft_p95,e2e_p50")


def test_compare_finds_a_ten_percent_slower_endpoint(tmp_path: Path) -> None:
    """b's simulator takes 10 % longer to the first token: the interval excludes 0, and
    --fail-on fails the gate."""
    with spawn_simulator(tmp_path / "a.log", "--ttft", "0.030", "--itl", "0.002",
                         "--jitter", "0.002") as a, \
            spawn_simulator(tmp_path / "b.log", "--ttft", "0.033", "--itl", "0.002",
                            "--jitter", "0.002") as b:
        config = _two_endpoints(tmp_path, a.base, b.base)
        done = llmmon("compare", "-c", str(config), "--endpoint", "a", "--endpoint", "b",
                      *COMPARE, "--fail-on", "ttft_p50:+5%", "--out", str(tmp_path / "out"))
    assert done.returncode == 1, done.stdout + done.stderr
    result = json.loads((tmp_path / "out/compare.json").read_text())
    ttft = next(m for m in result["metrics"] if m["metric"] == "ttft_p50")
    assert ttft["significant"]
    assert 0.05 < ttft["relative"] < 0.15, ttft
    assert ttft["low"] > 0
    assert result["verdict"] == "fail"
    assert result["thresholds"][0]["breached"]


def test_compare_of_identical_endpoints_passes(tmp_path: Path) -> None:
    """The same simulator twice: every interval includes 0 and the gate passes."""
    with spawn_simulator(tmp_path / "sim.log", "--ttft", "0.030", "--itl", "0.002",
                         "--jitter", "0.002") as sim:
        config = _two_endpoints(tmp_path, sim.base, sim.base)
        done = llmmon("compare", "-c", str(config), "--endpoint", "a", "--endpoint", "b",
                      *COMPARE, "--confidence", "0.999", "--fail-on", "ttft_p50:+5%",
                      "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((tmp_path / "out/compare.json").read_text())
    assert result["metrics"]
    for row in result["metrics"]:
        assert row["low"] <= 0 <= row["high"], row
    assert result["verdict"] == "pass"


def test_compare_two_saved_runs(simulator_process: SimProcess, tmp_path: Path) -> None:
    """--baseline compares two bench reports from their saved requests."""
    for name, ttft in (("old", 0.03), ("new", 0.045)):
        simulator_process.configure(ttft=ttft)
        done = llmmon("bench", "--url", simulator_process.base, "--model", "m",
                      "--concurrency", "2", "--requests", "40", "--warmup", "0",
                      "--output-tokens", "4", "--format", "json", "--out", str(tmp_path / name))
        assert done.returncode == 0, done.stderr
    done = llmmon("compare", "--baseline", str(tmp_path / "old/bench.json"),
                  str(tmp_path / "new/bench.json"), "--fail-on", "ttft_p50:+20%",
                  "--out", str(tmp_path / "cmp"))
    assert done.returncode == 1, done.stdout + done.stderr
    ttft = next(m for m in json.loads((tmp_path / "cmp/compare.json").read_text())["metrics"]
                if m["metric"] == "ttft_p50")
    assert 0.3 < ttft["relative"] < 0.7


def test_compare_refuses_a_bad_threshold_before_running(tmp_path: Path) -> None:
    done = llmmon("compare", "--url", "http://127.0.0.1:9/v1", "--model", "m",
                  "--fail-on", "ttft_p95:ten percent", "--out", str(tmp_path))
    assert done.returncode == 2
    assert "ttft_p95" in done.stderr


# --- what servers say about their models, on literal answers ------------------------------


def test_llama_cpp_models_meta() -> None:
    data = {"object": "list", "data": [{"id": "SmolLM2-135M-Instruct.Q4_1.gguf",
                                        "meta": {"n_params": 134515008, "size": 96155840,
                                                 "n_ctx_train": 8192}}]}
    info = from_openai_models(data, "other-name")  # the only model is the one served
    assert info is not None
    assert (info.parameters, info.size_bytes, info.context_length) == (134515008, 96155840,
                                                                        8192)


def test_vllm_models_max_model_len() -> None:
    data = {"data": [{"id": "x"}, {"id": "meta-llama/Llama-3.1-8B-Instruct",
                                   "max_model_len": 131072}]}
    info = from_openai_models(data, "meta-llama/Llama-3.1-8B-Instruct")
    assert info is not None
    assert info.context_length == 131072
    assert from_openai_models(data, "absent") is None  # two listed, neither the one asked


@pytest.mark.parametrize(("name", "parameters", "quant"), [
    ("SmolLM2-135M-Instruct.Q4_1.gguf", 135_000_000, "Q4_1"),
    ("meta-llama/Llama-3.1-8B-Instruct", 8_000_000_000, None),
    ("qwen2.5:1.5b", 1_500_000_000, None),
    ("TheBloke/Mistral-7B-Instruct-v0.2-AWQ", 7_000_000_000, "AWQ"),
    ("llama-3.1-70b-instruct-q4_k_m.gguf", 70_000_000_000, "Q4_K_M"),
    ("gpt-4o-mini", None, None),
    ("o1", None, None),
])
def test_size_and_quantisation_from_a_name(name: str, parameters: int | None,
                                           quant: str | None) -> None:
    info = from_name(name)
    assert (info.parameters, info.quantization) == (parameters, quant)


def test_ollama_show_and_tgi_info() -> None:
    show = {"details": {"parameter_size": "135M", "quantization_level": "Q8_0"},
            "model_info": {"llama.context_length": 8192}}
    info = from_ollama_show(show, "smollm2:135m")
    assert info is not None
    assert (info.parameters, info.quantization, info.context_length) == (135_000_000, "Q8_0",
                                                                         8192)
    tgi = from_tgi_info({"model_id": "mistral", "max_total_tokens": 4096, "quantize": "awq"})
    assert tgi is not None
    assert (tgi.served_model, tgi.context_length, tgi.quantization) == ("mistral", 4096, "awq")
    assert parameters_from("8.0B") == 8_000_000_000
    assert parameters_from("many") is None


def test_server_gauges_from_each_server() -> None:
    vllm = ('vllm:num_requests_running{model_name="m"} 3\n'
            'vllm:num_requests_waiting{model_name="m"} 5\n'
            'vllm:kv_cache_usage_perc{model_name="m"} 0.25\n')
    assert read_gauges(vllm) == {"queue": 5, "running": 3, "kv_cache": 0.25}
    tgi = "tgi_queue_size 2\ntgi_batch_current_size 7\n"
    assert read_gauges(tgi) == {"queue": 2, "running": 7}
    assert read_gauges("# nothing here\nother_metric 1\n") == {}


# --- prompts ------------------------------------------------------------------------------


def test_synthetic_prompts_share_no_prefix() -> None:
    prompts = synthetic(50, 64, 16, seed=3)
    heads = {p.text[:24] for p in prompts}
    assert len(heads) == 50  # a nonce up front: a prefix cache cannot serve any of them
    assert all(p.max_tokens == 16 for p in prompts)
    assert 40 <= len(prompts[0].text.split()) <= 80
    assert synthetic(5, 64, 16, seed=3) == prompts[:5]


def test_datasets_in_jsonl_and_csv(tmp_path: Path) -> None:
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"prompt": "2+3?", "expect": {"number": 5}}\n\n{"text": "hi"}\n')
    prompts = dataset(jsonl, 8)
    assert [p.text for p in prompts] == ["2+3?", "hi"]
    assert prompts[0].expect is not None
    csv_file = tmp_path / "d.csv"
    csv_file.write_text('prompt,other\n"Hello, world",x\n')
    assert [p.text for p in dataset(csv_file)] == ["Hello, world"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{not json\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2"):
        dataset(bad)


# --- GPUs -----------------------------------------------------------------------------------


async def test_gpu_energy_per_token_from_nvml_counters() -> None:
    """Energy is the counters' difference over every GPU, per output token; utilisation the
    busiest GPU's; a machine without NVML gives nothing, never zeros."""
    from llmmon.bench.gpu import GPUWatcher
    from llmmon.sim.nvml import FakeGPU, FakeNVML

    fake = FakeNVML([FakeGPU(uuid="GPU-a", util=60, energy_mj=1_000_000),  # each its own,
                     FakeGPU(uuid="GPU-b", util=20, energy_mj=5_000)])  # as real GPUs are
    async with GPUWatcher(fake.module, every=0.01) as gpus:
        fake.gpus[0].energy_mj += 30_000  # 30 J and 10 J while the step runs
        fake.gpus[1].energy_mj += 10_000
        await wait_for_async(lambda: bool(gpus._utilization), 5, "a utilisation sample")
    sample = gpus.summary(output_tokens=400)
    assert sample is not None
    assert sample.gpus == 2
    assert sample.energy_joules == pytest.approx(40.0)
    assert sample.joules_per_output_token == pytest.approx(0.1)
    assert sample.utilization_mean == pytest.approx(0.6)
    assert sample.average_power_watts > 0
    absent = FakeNVML([FakeGPU()], driver=False)
    async with GPUWatcher(absent.module) as none:
        pass
    assert none.summary(output_tokens=400) is None



def test_compare_takes_exactly_two_endpoints(tmp_path: Path) -> None:
    config = _two_endpoints(tmp_path, "http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1")
    for names in (["a"], ["a", "b", "a"]):
        done = llmmon("compare", "-c", str(config), *(x for n in names for x in ("--endpoint", n)),
                      "--out", str(tmp_path / "out"))
        assert done.returncode == 2
        assert "give 2 endpoints" in done.stderr


async def test_model_info_asks_as_a_probe_does(serve: Any, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    """The model's description is asked with the endpoint's key, and one larger than 1 MiB
    is not read."""
    from llmmon.bench.server import model_info
    from llmmon.daemon.httpserver import Request, Response
    from tests.conftest import make_endpoint

    seen: list[str | None] = []
    body = json.dumps({"data": [{"id": "m", "max_model_len": 4096}]}).encode()

    async def handler(request: Request) -> Response:
        seen.append(request.headers.get("authorization"))
        return Response(200, body, {"Content-Type": "application/json"})

    monkeypatch.setenv("BENCH_KEY", "sk-bench-0123456789")
    url = await serve(handler)
    info = await model_info(make_endpoint(url, model="m", api_key_env="BENCH_KEY"))
    assert info.context_length == 4096
    assert seen == ["Bearer sk-bench-0123456789"]
    body = json.dumps({"data": [{"id": "m", "max_model_len": 4096}],
                       "padding": "x" * (2 << 20)}).encode()
    assert (await model_info(make_endpoint(url, model="m"))).context_length is None
