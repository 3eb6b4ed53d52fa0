"""Does the nonce llmmon puts before every probe prompt change a small model's answers?
SmolLM2-135M on llama-cpp-python's server (scripts/install-llama), greedy decoding: each
prompt is asked with --trials fresh nonces per placement, and the answers are checked.

    .venv/bin/python benchmarks/nonce_answers.py [--trials 40]
"""

from __future__ import annotations

import argparse
import re
import secrets
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx

LLAMA = Path.home() / ".cache/llmmon-test/llama"
PROMPTS: list[tuple[str, Callable[[str], bool]]] = [
    ("What is 2 + 3?", lambda t: (re.findall(r"-?\d+", t) or ["?"])[-1] == "5"),
    ("What is the capital of France?", lambda t: "paris" in t.lower()),
]
# Where the nonce goes: llmmon's own (`[hex] ` before the text), and alternatives.
PLACEMENTS: dict[str, Callable[[str, str], list[dict[str, str]]]] = {
    "none": lambda n, t: [{"role": "user", "content": t}],
    "llmmon [nonce] prefix": lambda n, t: [{"role": "user", "content": f"[{n}] {t}"}],
    "'id: nonce' line": lambda n, t: [{"role": "user", "content": f"id: {n}\n\n{t}"}],
    "system message": lambda n, t: [{"role": "system", "content": f"Request {n}."},
                                    {"role": "user", "content": t}],
}


def main(trials: int) -> None:
    log = Path("/tmp/llmmon-nonce-llama.log")
    proc = subprocess.Popen([str(LLAMA / "venv/bin/python"), "-m", "llama_cpp.server",
                             "--model", str(LLAMA / "SmolLM2-135M-Instruct.Q4_1.gguf"),
                             "--host", "127.0.0.1", "--port", "0", "--n_ctx", "512"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        base = ""
        for _ in range(300):
            if found := re.search(r"running on (http://127\.0\.0\.1:\d+)", log.read_text()):
                base = found.group(1)
                break
            time.sleep(0.2)
        if not base:
            raise SystemExit("the llama.cpp server did not start")
        for name, place in PLACEMENTS.items():
            right = asked = 0
            for _ in range(1 if name == "none" else trials):
                nonce = secrets.token_hex(4)
                for text, good in PROMPTS:
                    answer = httpx.post(base + "/v1/chat/completions", timeout=60, json={
                        "model": "smollm2", "messages": place(nonce, text), "max_tokens": 20,
                        "temperature": 0}).json()["choices"][0]["message"]["content"]
                    right += good(answer)
                    asked += 1
            print(f"{name:24} {right}/{asked} right", flush=True)
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=40)
    main(parser.parse_args().trials)
