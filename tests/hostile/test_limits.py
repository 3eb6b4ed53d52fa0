"""Limits found on a second look: pipelined floods, bodies where none belong, a queue of
fresh password guesses, certificates that are not files, answers that RE2 cannot take."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import bcrypt
import pytest
import yaml

from llmmon.config import ConfigError, Expect
from llmmon.config.regex import regex_search
from llmmon.daemon import auth
from llmmon.daemon.auth import WebConfig, WebSecurity, load_web_config
from llmmon.daemon.httpserver import HTTPServer, Request, Response, text
from llmmon.probe.checks import MAX_REGEX_TEXT, passes
from tests.conftest import wait_for_async
from tests.hostile import heartbeat, p99


async def test_pipelined_requests_leave_the_loop_its_turns() -> None:
    """Thousands of requests in one read: each answer gives the loop a turn."""
    async def handler(request: Request) -> Response:
        return text(200, "ok\n")

    server = HTTPServer(handler)
    port = await server.start("127.0.0.1", 0)
    answered = threading.Event()

    def pipeline() -> None:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 3000)
            received, deadline = b"", time.monotonic() + 20
            while received.count(b"HTTP/1.1 200") < 3000 and time.monotonic() < deadline:
                received += sock.recv(1 << 16)
        answered.set()

    gaps: list[float] = []
    thread = threading.Thread(target=pipeline, daemon=True)
    thread.start()
    await heartbeat(gaps, answered.is_set)
    thread.join(5)
    await server.close()
    assert p99(gaps) < 0.05, sorted(gaps)[-5:]


async def test_a_body_where_none_belongs_is_refused_before_it_is_read() -> None:
    async def handler(request: Request) -> Response:
        return text(200, "ok\n")

    server = HTTPServer(handler, max_body=4096)
    port = await server.start("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1048000\r\n\r\n")
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    await server.close()
    assert status.startswith(b"HTTP/1.1 413")


async def test_fresh_guesses_queue_at_most_a_few_bcrypt_checks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Forty different wrong passwords at once: a bounded number reach bcrypt, every one is
    refused, and the right password afterwards still works."""
    hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=4)).decode()
    calls: list[bytes] = []
    release = threading.Event()  # bcrypt holds until every guess has been asked
    real = auth._check

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(password)
        release.wait(10)
        return real(password, hashed)

    monkeypatch.setattr(auth, "_check", counting)
    security = WebSecurity(WebConfig(basic_auth_users={"prom": hashed}))

    def basic(password: str) -> str:
        return "Basic " + base64.b64encode(f"prom:{password}".encode()).decode()

    guesses = [asyncio.ensure_future(security.authorized(basic(f"guess-{i}")))
               for i in range(40)]
    # Those beyond the queue are refused at once, unchecked; the rest wait on bcrypt.
    await wait_for_async(lambda: sum(g.done() for g in guesses) == 40 - auth.MAX_PENDING, 10,
                         "the guesses beyond the queue to be refused")
    release.set()
    verdicts = await asyncio.gather(*guesses)
    assert not any(verdicts)
    assert len(calls) <= auth.MAX_PENDING
    assert await security.authorized(basic("right"))


def test_a_certificate_that_is_not_a_file_is_refused_at_once(tmp_path: Path) -> None:
    """A FIFO where the certificate should be: OpenSSL would block opening it, on the loop."""
    fifo = tmp_path / "cert.pem"
    os.mkfifo(fifo)
    web = tmp_path / "web.yaml"
    web.write_text(yaml.safe_dump({"tls_server_config": {"cert_file": "cert.pem",
                                                         "key_file": "cert.pem"}}))
    done = subprocess.run([sys.executable, "-c", "from pathlib import Path\n"
                           "from llmmon.daemon.auth import load_web_config\n"
                           f"load_web_config(Path({str(web)!r}))"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "is not a regular file" in done.stderr
    web.write_text(yaml.safe_dump({"tls_server_config": {"cert_file": "a\0b",
                                                         "key_file": "k"}}))
    with pytest.raises(ConfigError):  # a NUL in a path: a config error, not a ValueError
        load_web_config(web)


def test_answers_with_lone_surrogates_can_be_searched() -> None:
    assert regex_search("Paris", "Paris \ud800 France")
    assert passes(Expect(regex="^Paris"), "Paris \ud800")


def test_a_regex_reads_the_first_64_kib_of_an_answer() -> None:
    """The cap is the rule: what lies past it is not searched."""
    late = "x" * MAX_REGEX_TEXT + "needle"
    assert not passes(Expect(regex="needle"), late)
    assert passes(Expect(contains="needle"), late)  # contains reads it all (linear, cheap)
