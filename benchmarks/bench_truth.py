"""How true are ``llmmon bench``'s numbers? Measured against the simulator's own stamps and
token counter, beside guidellm 0.8.1 run on the same simulator from the same process tree.

    .venv/bin/python benchmarks/bench_truth.py [--streams 1 16 64] [--rounds 8]
        [--requests N] [--no-guidellm] [--guidellm-venv ~/.cache/llmmon-bench/guidellm]

The simulator (``python -m llmmon.sim.simulator``, no jitter) runs in a process of its own;
it stamps every token event with CLOCK_MONOTONIC just before writing it (``x_sent_ns``),
every response with the moment the request was read (``x-sim-received-ns``), and counts the
tokens it sent (``llmmon_sim_tokens_sent_total`` on its /metrics). Everything is loopback.

For each number of concurrent streams, a step of ``llmmon bench`` (a warm-up of 2, then N
requests, N = rounds x streams unless --requests) runs through llmmon's own runner
(``run_step``, ``Clients``, ``record``, ``summarize``: the numbers ``llmmon bench`` reports).
Only the probe is wrapped, to keep each response's raw bytes and received header (as
``timing_accuracy.py`` does); the bytes are parsed after the step, so the client CPU
figure carries just the copy. Then guidellm runs the same prompts at the same concurrency
and request count as a subprocess (profile ``concurrent``, ``max_requests``), from its own
venv, which this script creates on first run (``pip install guidellm==0.8.1``); its JSON
report is parsed. Where guidellm cannot run, the reason is printed and its rows left out.

Above the table, for each llmmon step: the first-token stamp error and the ITL error (p50
and p99), the TTFT error against the server's received stamp (which also counts the
server's own lateness in reading a request), and the tokens llmmon counted beside those the
server stamped and counted; for each guidellm run, the server's busy window and tokens.

Columns (times in ms):
  tool         llmmon (a step as `llmmon bench` runs it, warm-up 2 at concurrency 1, so the
               step opens a connection per extra stream); llmmon* (the same once one request
               per stream has run first, so every connection is already open, as in a sweep
               going back to a level it has reached); guidellm; or "sim", the truth during
               llmmon's step from the server's stamps (TTFT = first token sent - request
               received; ITL = the gaps between sends)
  streams      concurrent streams; reqs: requests that succeeded
  TTFT p50/p99 as the tool reports it (guidellm: its JSON report's percentiles)
  1st err p99  llmmon only: the first token's arrival stamp minus its send stamp, i.e. what
               the client adds to the end of TTFT (transit, reading, stamping)
  ITL p50/p99  as the tool reports it (guidellm: per-request mean ITL, across requests)
  ITL err p99  llmmon only: measured gap minus the server's gap between the same two sends
  out tok/s    the tool's output tokens per second
  srv tok/s    the truth: the server's counter of tokens sent over the step, divided by the
               server's busy window. For llmmon, the window runs from the first request the
               server read to the last token it sent (its own stamps); for guidellm, which
               exposes no stamps, from the first to the last change of the server's gauges
               and counter, polled every 2 ms from this process (the uncertainty, a few
               ms, is printed above the table)
  tput err %   (out tok/s - srv tok/s) / srv tok/s
  CPU us/ev    the client's CPU time per streamed event: llmmon's own figure (its process
               over the step); guidellm's whole process tree over its busy window
  sat          llmmon's verdict whether the client was saturated (CPU >= 90 % of the wall)

guidellm's TTFT and ITL have no per-request truth to compare with; the simulator's
configured TTFT and ITL, printed above the table, and the "sim" rows (what the server did
at that load during llmmon's step) are the yardstick.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from timing_accuracy import SENT, Recorder  # the raw-bytes recorder both benchmarks use

from llmmon.bench import runner, stats
from llmmon.bench.model import StepSummary
from llmmon.bench.runner import Clients, StepPlan, run_step
from llmmon.bench.sweep import objectives, warm_up
from llmmon.bench.workload import synthetic
from llmmon.config import EndpointConfig
from llmmon.config.endpoints import Prompt
from llmmon.config.settings import Settings
from llmmon.probe.result import ProbeResult
from llmmon.probe.run import run_probe
from llmmon.providers import get_provider

GUIDELLM_VERSION = "0.8.1"
DEFAULT_VENV = Path.home() / ".cache" / "llmmon-bench" / "guidellm"
METRIC = re.compile(r"^([A-Za-z_:][\w:]*)(?:\{[^}]*\})?\s+(\S+)\s*$", re.MULTILINE)
TOKENS, RUNNING = "llmmon_sim_tokens_sent_total", "vllm:num_requests_running"
POLL = 0.002  # seconds between polls of the server while guidellm runs
MODEL = "sim"


@dataclass
class Row:
    tool: str
    streams: int
    requests: int | None = None
    ttft: tuple[float | None, float | None] = (None, None)  # p50, p99 in seconds
    first_err_p99: float | None = None
    itl: tuple[float | None, float | None] = (None, None)
    itl_err_p99: float | None = None
    tok_s: float | None = None
    server_tok_s: float | None = None
    cpu_us: float | None = None
    saturated: bool | None = None

    def cells(self) -> list[str]:
        err = (None if self.tok_s is None or not self.server_tok_s
               else (self.tok_s - self.server_tok_s) / self.server_tok_s * 100)
        sat = None if self.saturated is None else ("yes" if self.saturated else "no")
        return [self.tool, str(self.streams), _num(self.requests, "{:d}"),
                _ms(self.ttft[0]), _ms(self.ttft[1]), _ms(self.first_err_p99, 3),
                _ms(self.itl[0]), _ms(self.itl[1]), _ms(self.itl_err_p99, 3),
                _num(self.tok_s, "{:.1f}"), _num(self.server_tok_s, "{:.1f}"),
                _num(err, "{:+.2f}"), _num(self.cpu_us, "{:.1f}"), sat or "-"]


HEADERS = ["tool", "streams", "reqs", "TTFT p50", "TTFT p99", "1st err p99", "ITL p50",
           "ITL p99", "ITL err p99", "out tok/s", "srv tok/s", "tput err %", "CPU us/ev",
           "sat"]


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _ms(seconds: float | None, digits: int = 2) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.{digits}f}"


def print_table(rows: Sequence[Row]) -> None:
    lines = [HEADERS] + [r.cells() for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADERS))]
    for n, line in enumerate(lines):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(line, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def quantiles(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    ordered = sorted(values)
    return stats.percentile(ordered, 0.5), stats.percentile(ordered, 0.99)


# --- the simulator -------------------------------------------------------------------------

def start_simulator(args: argparse.Namespace) -> tuple[subprocess.Popen[str], str]:
    """The simulator in a process of its own; returns it and its root URL (no /v1)."""
    sim = subprocess.Popen(
        [sys.executable, "-m", "llmmon.sim.simulator", "--port", "0", "--model", MODEL,
         "--ttft", str(args.ttft), "--itl", str(args.itl),
         "--output-tokens", str(args.output_tokens), "--tag", "bench_truth"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
    assert sim.stdout is not None
    url = sim.stdout.readline().split()[-1]
    return sim, url.removesuffix("/v1")


def parse_metrics(text: str) -> dict[str, float]:
    return {name: float(value) for name, value in METRIC.findall(text)}


def server_metrics(root: str) -> dict[str, float]:
    return parse_metrics(httpx.get(f"{root}/metrics", timeout=5).text)


# --- llmmon bench, through its own runner --------------------------------------------------

@dataclass
class Sample:
    result: ProbeResult
    raw: bytes
    received_ns: int | None


@dataclass
class RecordingProbe:
    """``run_probe`` with a recording decoder and the server's received header kept."""

    samples: list[Sample] = field(default_factory=list)

    async def __call__(self, client: httpx.AsyncClient, endpoint: EndpointConfig,
                       prompt: Prompt, **kwargs: Any) -> ProbeResult:
        recorder = Recorder(get_provider(endpoint).stream_decoder(endpoint))
        received: list[int] = []

        async def keep_header(response: httpx.Response) -> None:
            received.append(int(response.headers.get("x-sim-received-ns", "0")))

        client.event_hooks = {"response": [keep_header]}
        result = await run_probe(client, endpoint, prompt, decoder=recorder, **kwargs)
        self.samples.append(Sample(result, bytes(recorder.raw),
                                   received[-1] if received else None))
        return result


def make_endpoint(root: str) -> EndpointConfig:
    """The endpoint ``llmmon bench --url ROOT/v1 --model sim`` would build."""
    data = {"name": "adhoc", "provider": "openai", "url": f"{root}/v1", "model": MODEL,
            "timeout": "60s", "stream": True}
    return Settings(endpoints=[data]).endpoints[0]


async def llmmon_step(endpoint: EndpointConfig, prompts: list[Prompt], streams: int,
                      requests: int, root: str, open_all: bool
                      ) -> tuple[StepSummary, list[Sample], float]:
    """One bench step as ``llmmon bench`` runs it: its summary, the samples, and the
    server's tokens sent during it. ``open_all``: the warm-up also runs one request per
    stream at full concurrency, so the step opens no connection of its own."""
    probe, clients = RecordingProbe(), Clients()
    try:
        # llmmon's runner, its probe swapped for the recording one for the step
        with mock.patch.object(runner, "run_probe", probe):
            await warm_up([endpoint], prompts, 2, clients)
            if open_all:
                await run_step([endpoint], prompts,
                               StepPlan("concurrency", streams, streams, None), clients)
            probe.samples.clear()
            before = await asyncio.to_thread(server_metrics, root)
            result = await run_step([endpoint], prompts,
                                    StepPlan("concurrency", streams, requests, None), clients)
            after = await asyncio.to_thread(server_metrics, root)
    finally:
        await clients.close()
    goals = objectives(endpoint)
    summary = stats.summarize(result.records, mode="concurrency", load=streams,
                              duration=result.duration, ttft_objective=goals["ttft"],
                              tpot_objective=goals["tpot"], cpu_seconds=result.cpu_seconds)
    return summary, probe.samples, after[TOKENS] - before[TOKENS]


@dataclass
class Truth:
    first_err: list[float] = field(default_factory=list)  # arrival stamp - send stamp
    ttft_err: list[float] = field(default_factory=list)  # measured TTFT - server's TTFT
    itl_err: list[float] = field(default_factory=list)
    server_ttft: list[float] = field(default_factory=list)
    server_itl: list[float] = field(default_factory=list)
    stamped_tokens: int = 0
    window: tuple[int, int] | None = None  # first request read, last token sent (ns)
    unmatched: int = 0  # requests whose gaps could not be paired with the server's


def compare(samples: Sequence[Sample]) -> Truth:
    """Each request's timing against the server's stamps of the same request."""
    truth = Truth()
    starts, ends = [], []
    for s in samples:
        sent = [int(x) for x in SENT.findall(s.raw)]
        r = s.result
        if not r.ok or r.ttft is None or r.sent_ns is None or not sent or not s.received_ns:
            truth.unmatched += 1
            continue
        gaps = [(b - a) / 1e9 for a, b in itertools.pairwise(sent)]
        truth.stamped_tokens += len(sent)
        starts.append(s.received_ns)
        ends.append(sent[-1])
        server_ttft = (sent[0] - s.received_ns) / 1e9
        truth.server_ttft.append(server_ttft)
        truth.server_itl += gaps
        truth.first_err.append(r.ttft - (sent[0] - r.sent_ns) / 1e9)
        truth.ttft_err.append(r.ttft - server_ttft)
        if len(r.itl) == len(gaps):
            truth.itl_err += [m - t for m, t in zip(r.itl, gaps, strict=True)]
        else:
            truth.unmatched += 1
    if starts:
        truth.window = (min(starts), max(ends))
    return truth


def llmmon_rows(summary: StepSummary, truth: Truth, server_tokens: float, streams: int,
                tool: str) -> list[Row]:
    """The tool's row, and (for the plain step) the server's own: "sim"."""
    window = (truth.window[1] - truth.window[0]) / 1e9 if truth.window else 0.0
    server_tok_s = server_tokens / window if window > 0 else None
    row = Row(tool, streams, summary.succeeded, (summary.ttft.p50, summary.ttft.p99),
              quantiles(truth.first_err)[1], (summary.itl.p50, summary.itl.p99),
              quantiles(truth.itl_err)[1], summary.output_tokens_per_second, server_tok_s,
              summary.client_cpu_per_event_us, summary.client_saturated)
    if tool != "llmmon":
        return [row]
    sim = Row("sim", streams, len(truth.server_ttft), quantiles(truth.server_ttft),
              itl=quantiles(truth.server_itl), server_tok_s=server_tok_s)
    return [sim, row]


def print_llmmon_details(summary: StepSummary, truth: Truth, server_tokens: float
                         ) -> None:
    def line(name: str, values: list[float]) -> str:
        p50, p99 = quantiles(values)
        return f"{name} p50 {_ms(p50, 3)} / p99 {_ms(p99, 3)} ms"

    print(f"    {line('first-token stamp error', truth.first_err)};  "
          f"{line('ITL error', truth.itl_err)};  {line('TTFT error', truth.ttft_err)}")
    print(f"    tokens: llmmon counted {summary.output_tokens}, server stamped "
          f"{truth.stamped_tokens}, server counter {server_tokens:.0f}; "
          f"{summary.requests - summary.succeeded} failed, {truth.unmatched} unmatched; "
          f"client CPU {summary.client_cpu_seconds:.2f} s over {summary.duration:.2f} s",
          flush=True)


def run_llmmon(root: str, prompts: list[Prompt], streams: int, requests: int,
               open_all: bool = False) -> list[Row]:
    endpoint = make_endpoint(root)
    summary, samples, server_tokens = asyncio.run(
        llmmon_step(endpoint, prompts, streams, requests, root, open_all))
    truth = compare(samples)
    tool = "llmmon*" if open_all else "llmmon"
    print(f"{tool:<8} {streams:>3} streams: {summary.succeeded}/{summary.requests} ok in "
          f"{summary.duration:.2f} s", flush=True)
    print_llmmon_details(summary, truth, server_tokens)
    return llmmon_rows(summary, truth, server_tokens, streams, tool)


# --- guidellm, from its own venv -----------------------------------------------------------

class Unavailable(Exception):
    """guidellm could not run; the message says why."""


def guidellm_version(exe: Path) -> str | None:
    if not exe.exists():
        return None
    try:
        out = subprocess.run([str(exe), "--version"], capture_output=True, text=True,
                             timeout=120).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"version:?\s*(\S+)", out)
    return match.group(1) if match else None


def ensure_guidellm(venv: Path) -> Path:
    """guidellm 0.8.1's executable in ``venv``, which is created and filled if need be."""
    exe = venv / "bin" / "guidellm"
    if guidellm_version(exe) == GUIDELLM_VERSION:
        return exe
    log = venv.parent / f"{venv.name}-install.log"
    print(f"guidellm {GUIDELLM_VERSION} is not in {venv}: installing it there from PyPI "
          f"(first run only; it pulls in torch, several GB, a few minutes; log: {log})",
          flush=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    python = shutil.which("python3.11") or sys.executable
    steps = [[python, "-m", "venv", str(venv)],
             [str(venv / "bin" / "pip"), "install", f"guidellm=={GUIDELLM_VERSION}"]]
    with log.open("w") as out:
        for step in steps:
            if step[1:3] == ["-m", "venv"] and (venv / "bin" / "python").exists():
                continue
            try:
                code = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT,
                                      timeout=1800).returncode
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise Unavailable(f"{' '.join(step[:3])}: {exc}") from None
            if code != 0:
                raise Unavailable(f"{' '.join(step[:3])} exited {code}: {_last_line(log)}")
    found = guidellm_version(exe)
    if found != GUIDELLM_VERSION:
        raise Unavailable(f"after installing, {exe} reports version {found}")
    return exe


def _last_line(path: Path) -> str:
    """The last error line of a log (pip's "ERROR: ..."), else its last line."""
    lines = [x for x in path.read_text(errors="replace").splitlines() if x.strip()]
    errors = [x for x in lines if x.startswith("ERROR") or "Error" in x]
    return (errors or lines or ["(no output)"])[-1]


def process_tree(root_pid: int) -> set[int]:
    """A process and all its live descendants, from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    tree, frontier = {root_pid}, {root_pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - tree
        tree |= frontier
    return tree


def cpu_seconds(pids: set[int]) -> float:
    """User + system CPU of ``pids`` and of their children they reaped (cutime, cstime)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited and reaped: its time is in its parent's cutime/cstime
        ticks += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


class Watcher(threading.Thread):
    """Polls the server's gauges and counter, and a process tree's CPU, every ``POLL`` s."""

    def __init__(self, root: str, pid: int) -> None:
        super().__init__(daemon=True)
        self.root, self.pid = root, pid
        self.samples: list[tuple[float, float, float, float]] = []  # t, running, tokens, cpu
        self.done = threading.Event()

    def run(self) -> None:
        pids, found = {self.pid}, 0.0
        with httpx.Client(timeout=5) as client:
            while not self.done.wait(POLL):
                if time.monotonic() - found > 0.5:  # guidellm starts its workers late
                    pids, found = process_tree(self.pid), time.monotonic()
                asked = time.monotonic()
                try:
                    m = parse_metrics(client.get(f"{self.root}/metrics").text)
                except httpx.HTTPError:
                    continue
                t = (asked + time.monotonic()) / 2  # the server read its state in between
                self.samples.append((t, m[RUNNING], m[TOKENS], cpu_seconds(pids)))

    def busy(self, tokens_before: float, tokens_after: float
             ) -> tuple[float, float, float] | None:
        """The server's busy window (seconds), its uncertainty (s), and the tree's CPU
        over it: from the first sample showing a request or a token to the first showing
        the last token."""
        s = self.samples
        start = next((i for i, x in enumerate(s) if x[1] > 0 or x[2] > tokens_before), None)
        end = next((i for i, x in enumerate(s) if x[2] >= tokens_after), None)
        if not start or end is None or end <= start:  # no poll before the work began
            return None
        t0 = (s[start - 1][0] + s[start][0]) / 2
        t1 = (s[end - 1][0] + s[end][0]) / 2
        slack = (s[start][0] - s[start - 1][0] + s[end][0] - s[end - 1][0]) / 2
        return t1 - t0, slack, s[end][3] - s[start - 1][3]


def write_dataset(prompts: Sequence[Prompt], input_tokens: int, path: Path) -> None:
    """llmmon's prompts, as a JSONL file guidellm reads (prompt and token counts given, so
    it needs no tokenizer)."""
    with path.open("w") as f:
        for p in prompts:
            f.write(json.dumps({"prompt": p.text, "prompt_tokens_count": input_tokens,
                                "output_tokens_count": p.max_tokens}) + "\n")


def guidellm_command(exe: Path, root: str, streams: int, requests: int, data: Path,
                     out: Path) -> list[str]:
    return [str(exe), "run",
            "--backend", f"kind=openai_http,target={root},model={MODEL},validate_backend=false",
            "--profile", f"kind=concurrent,streams={streams}",
            "--constraint", f"kind=max_requests,count={requests}",
            "--data", f"kind=json_file,path={data}",
            "--output", f"kind=json,path={out}",
            "--disable-console"]


def run_guidellm(exe: Path, root: str, prompts: list[Prompt], input_tokens: int,
                 streams: int, timeout: float) -> Row:
    with tempfile.TemporaryDirectory(prefix="bench_truth_") as tmp:
        data, out, log = Path(tmp, "data.jsonl"), Path(tmp, "report.json"), Path(tmp, "log")
        write_dataset(prompts, input_tokens, data)
        before = server_metrics(root)[TOKENS]
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        with log.open("w") as sink:
            proc = subprocess.Popen(
                guidellm_command(exe, root, streams, len(prompts), data, out), stdout=sink,
                stderr=subprocess.STDOUT, env=env, cwd=tmp, start_new_session=True)
            watcher = Watcher(root, proc.pid)
            watcher.start()
            try:
                code = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
                raise Unavailable(f"guidellm ran past {timeout:.0f} s and was killed") from None
            finally:
                watcher.done.set()
                watcher.join()
        after = server_metrics(root)[TOKENS]
        if code != 0 or not out.exists():
            raise Unavailable(f"guidellm exited {code}: {_last_line(log)}")
        report = json.loads(out.read_text())
    return guidellm_row(report, streams, watcher, before, after)


def guidellm_row(report: dict[str, Any], streams: int, watcher: Watcher, before: float,
                 after: float) -> Row:
    try:
        bench = report["benchmarks"][0]
        m = bench["metrics"]
        ttft = m["time_to_first_token_ms"]["successful"]["percentiles"]
        itl = m["inter_token_latency_ms"]["successful"]["percentiles"]
        tok_s = m["output_tokens_per_second"]["total"]["mean"]
        ok = bench["scheduler_metrics"]["requests_made"]["successful"]
    except (KeyError, IndexError, TypeError) as exc:
        raise Unavailable(f"its JSON report lacks {exc}") from None
    busy = watcher.busy(before, after)
    tokens = after - before
    window, slack, cpu = busy if busy else (0.0, 0.0, 0.0)
    seen = (f"in a busy window of {window:.3f} s (+/- {slack * 1000:.1f} ms); its process "
            f"tree used {cpu:.2f} s CPU in it" if busy else "(its busy window was not seen)")
    print(f"guidellm {streams:>3} streams: {ok} ok; server sent {tokens:.0f} tokens {seen}; "
          f"guidellm's own duration {bench.get('duration', 0):.3f} s", flush=True)
    ms = 1e-3
    return Row("guidellm", streams, ok, (ttft["p50"] * ms, ttft["p99"] * ms), None,
               (itl["p50"] * ms, itl["p99"] * ms), None, tok_s,
               tokens / window if window > 0 else None,
               cpu * 1e6 / tokens if busy and tokens else None, None)


# --- the whole run -------------------------------------------------------------------------

def guidellm_or_reason(args: argparse.Namespace) -> Path | str:
    if args.no_guidellm:
        return "left out (--no-guidellm)"
    try:
        return ensure_guidellm(args.guidellm_venv.expanduser())
    except Unavailable as exc:
        return f"not available: {exc}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, nargs="+", default=[64])
    parser.add_argument("--rounds", type=int, default=8,
                        help="requests per level = rounds x streams (at least 32)")
    parser.add_argument("--requests", type=int, help="requests per level, fixed")
    parser.add_argument("--ttft", type=float, default=0.05)
    parser.add_argument("--itl", type=float, default=0.02)
    parser.add_argument("--output-tokens", type=int, default=32)
    parser.add_argument("--input-tokens", type=int, default=256)
    parser.add_argument("--no-guidellm", action="store_true")
    parser.add_argument("--guidellm-venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--guidellm-timeout", type=float, default=300.0,
                        help="seconds one guidellm run may take")
    args = parser.parse_args()
    began = time.monotonic()
    guidellm = guidellm_or_reason(args)
    sim, root = start_simulator(args)
    print(f"simulator {root}: configured TTFT {args.ttft * 1000:.0f} ms, ITL "
          f"{args.itl * 1000:.0f} ms, {args.output_tokens} tokens per answer, no jitter; "
          f"{os.cpu_count()} CPUs shared by the simulator and the clients; "
          f"guidellm {GUIDELLM_VERSION}: "
          f"{guidellm if isinstance(guidellm, str) else 'from ' + str(guidellm)}", flush=True)
    rows: list[Row] = []
    try:
        for streams in args.streams:
            requests = args.requests or max(32, args.rounds * streams)
            prompts = synthetic(requests, args.input_tokens, args.output_tokens)
            rows += run_llmmon(root, prompts, streams, requests)
            if streams > 1:
                rows += run_llmmon(root, prompts, streams, requests, open_all=True)
            if isinstance(guidellm, Path):
                try:
                    rows.append(run_guidellm(guidellm, root, prompts, args.input_tokens,
                                             streams, args.guidellm_timeout))
                except Unavailable as exc:
                    print(f"guidellm {streams:>3} streams: {exc}", flush=True)
    finally:
        sim.terminate()
        sim.wait(5)
    print()
    print_table(rows)
    print(f"\nwall time {time.monotonic() - began:.1f} s")


if __name__ == "__main__":
    main()
