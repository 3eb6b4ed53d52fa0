"""A short soak in CI: benchmarks/soak.py for a minute must find no growth."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_short_soak_finds_no_growth() -> None:
    """Faulty endpoints probed every second for a minute: no growth in RSS, fds, threads,
    tasks or series, every scrape answered, exit 0 on SIGTERM."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks/soak.py"), "--duration", "60",
                           "--sample-every", "10"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "soak: PASS" in done.stdout
