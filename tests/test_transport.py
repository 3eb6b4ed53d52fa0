"""llmmon's network backend: kernel receive stamps, the DNS phase, TLS over the raw socket."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trustme

from llmmon.config import Prompt
from llmmon.probe.backend import StampedStream, TLSStream
from llmmon.probe.run import run_probe
from llmmon.probe.transport import make_client
from tests.conftest import SimServer, make_endpoint

PROMPT = Prompt(name="count", text="Count from 1 to 5.")

pytestmark = pytest.mark.sim(ttft=0.02, itl=0.005)

StartSim = Callable[..., Awaitable[SimServer]]


async def test_client_uses_the_stamping_backend(sim: SimServer) -> None:
    """Probe connections are llmmon's stamped streams, with kernel receive stamps."""
    port = sim.port
    ep = make_endpoint(f"http://localhost:{port}/v1")
    async with make_client(ep) as client:
        response = await client.post(f"http://localhost:{port}/v1/completions",
                                     json={"prompt": "hi", "max_tokens": 2})
        stream = response.extensions["network_stream"]
        assert isinstance(stream, StampedStream)
        assert stream.last_rx_ns is not None
        assert stream.last_tx_ns is not None
        assert stream.last_tx_ns < stream.last_rx_ns
        result = await run_probe(client, ep, PROMPT)
    assert result.ok
    assert result.sent_ns is not None


async def test_dns_phase_is_timed_for_a_name(sim: SimServer) -> None:
    """A host name is resolved in its own phase; the connect phase no longer includes it."""
    async with make_client(ep := make_endpoint(f"http://localhost:{sim.port}/v1")) as client:
        result = await run_probe(client, ep, PROMPT)
    assert result.ok
    assert result.phases["dns"] > 0
    assert result.phases["connect"] > 0


@pytest.fixture
def ca(tmp_path: Path) -> tuple[trustme.CA, Path]:
    authority = trustme.CA()
    path = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return authority, path


async def test_https_probe_over_tls_stream(start_sim: StartSim,
                                           ca: tuple[trustme.CA, Path]) -> None:
    """An https endpoint trusted through tls_config.ca_file is probed over llmmon's TLS stream."""
    authority, ca_path = ca
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    sim = await start_sim(ssl_context=context)
    ep = make_endpoint(sim.url(), tls_config={"ca_file": str(ca_path)})
    async with make_client(ep) as client:
        result = await run_probe(client, ep, PROMPT)
        response = await client.get(f"{sim.url()}/models")
        assert isinstance(response.extensions["network_stream"], TLSStream)
    assert result.ok, result.error
    assert result.text == "1, 2, 3, 4, 5"
    assert len(result.itl) == 4
    assert result.phases["tls"] > 0


async def test_untrusted_certificate_is_a_connect_error(start_sim: StartSim,
                                                       ca: tuple[trustme.CA, Path]) -> None:
    """Without the CA, the handshake fails as a connect error, and no request is sent."""
    authority, _ = ca
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    sim = await start_sim(ssl_context=context)
    ep = make_endpoint(sim.url())
    async with make_client(ep) as client:
        result = await run_probe(client, ep, PROMPT)
    assert result.error == "connect"
    assert sim.requests == 0
    assert "certificate verify failed" in (result.detail or "").lower()
    assert "tls_config.ca_file" in (result.hint or "")


async def test_unresolvable_host_is_a_connect_error() -> None:
    """A name that does not resolve fails fast as connect."""
    ep = make_endpoint("http://no-such-host.invalid:8000/v1")
    async with make_client(ep) as client:
        result = await run_probe(client, ep, PROMPT)
    assert result.error == "connect"
    assert result.hint == "the host name does not resolve", result.detail


async def test_a_read_waits_for_its_timeout_and_no_longer() -> None:
    """A silent peer: the read gives up at its timeout (a timer on its own waiter, not a
    timeout context per read); data that is there is read at once, whatever the timeout
    (waking a waiting read is what every probe test does). The socket stays watched between
    reads, but not once it is readable with nobody reading (level-triggered, it would wake
    the loop on every turn), and not after close."""
    import asyncio
    import socket

    import httpcore

    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    loop = asyncio.get_running_loop()
    stream = StampedStream(ours, 0.0)
    fd = ours.fileno()
    try:
        began = loop.time()
        with pytest.raises(httpcore.ReadTimeout):
            await stream.read(1024, timeout=0.05)
        assert 0.05 <= loop.time() - began < 1.0
        theirs.sendall(b"hello")  # nobody reads: the watch goes at the next turns
        for _ in range(100):
            if not stream._watching:
                break
            await asyncio.sleep(0)
        assert not loop.remove_reader(fd)
        assert await stream.read(1024, timeout=0.0) == b"hello"
        assert stream.last_rx_ns is not None
        reading = asyncio.create_task(stream.read(1024))
        for _ in range(100):  # until the read waits
            if stream._watching:
                break
            await asyncio.sleep(0)
        theirs.sendall(b"again")
        assert await reading == b"again"
        assert stream._watching  # kept for the next read
        await stream.aclose()
        assert not loop.remove_reader(fd)
    finally:
        ours.close()
        theirs.close()
