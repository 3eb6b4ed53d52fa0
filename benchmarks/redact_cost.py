"""What masking a failed probe's detail costs, on ordinary and hostile server messages.

Redaction runs on the event loop after a probe, so a message crafted to make its patterns
backtrack would stall every probe and scrape. Each row prints the time per call beside a
reference in the same process: copying the same text through ``str.replace`` once.

    python benchmarks/redact_cost.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llmmon.probe.diagnose import redact

MESSAGES = {
    "ordinary 401": "Incorrect API key provided: Zq7abc***xyz. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
    "token- x 500": "token-" * 500,
    "token- x 100k": "token-" * 100_000,
    "sk- x 2000": "sk-" * 2000,
    "bearer x 1000": "bearer " * 1000,
    "password= x 500": "password=" * 500,
    "4 MiB of x": "x" * (4 << 20),
}
SECRETS = ["Zq7-configured-key-000", "header-secret-42"]


def per_call(fn: object, text: str, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn(text)  # type: ignore[operator]
    return (time.perf_counter() - start) / repeat


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print(f"{'message':<18} {'chars':>9} {'redact µs':>10} {'reference µs':>13} {'ratio':>7}")
    for name, text in MESSAGES.items():
        masked = per_call(lambda t: redact(t, SECRETS), text, args.repeat)
        reference = per_call(lambda t: t.replace(SECRETS[0], "****"), text, args.repeat)
        print(f"{name:<18} {len(text):>9} {masked * 1e6:>10.1f} {reference * 1e6:>13.1f} "
              f"{masked / reference:>7.1f}")


if __name__ == "__main__":
    main()
