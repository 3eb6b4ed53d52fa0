"""The httpx client every probe uses: httpcore's connection pool on llmmon's stamping network
backend (``backend.py``), passed in through httpcore's public ``network_backend=``.

httpx's own ``AsyncHTTPTransport`` builds its pool itself and takes no backend, so this is
the few lines of it llmmon needs: turn an httpx request into an httpcore one, and httpcore's
exceptions into httpx's (the probe classifies failures by httpx's exception tree).
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from contextlib import contextmanager

import httpcore
import httpx

from llmmon.config import EndpointConfig
from llmmon.probe.backend import StampingBackend

# Most specific first is not needed: an exception's MRO is walked until a class matches.
_EXCEPTIONS: dict[type[Exception], type[httpx.HTTPError]] = {
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.TimeoutException: httpx.TimeoutException,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.NetworkError: httpx.NetworkError,
    httpcore.ProxyError: httpx.ProxyError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
    httpcore.ProtocolError: httpx.ProtocolError,
}


@contextmanager
def httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for cls in type(exc).__mro__:
            if cls in _EXCEPTIONS:
                raise _EXCEPTIONS[cls](str(exc)) from exc
        raise


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes], response: httpcore.Response) -> None:
        self._stream, self._response = stream, response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        await self._response.aclose()


class StampingTransport(httpx.AsyncBaseTransport):
    def __init__(self, ssl_context: ssl.SSLContext | None, connections: int) -> None:
        self.pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context, max_connections=connections,
            max_keepalive_connections=connections, retries=0,
            # Under the 5 s after which uvicorn (vLLM, llama-cpp-python, LiteLLM) closes an idle
            # connection: reusing one as the server closes it fails the probe for nothing.
            keepalive_expiry=4.0,
            # Nagle plus delayed ACKs would add milliseconds to small requests.
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            network_backend=StampingBackend(),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=request.url.raw_scheme, host=request.url.raw_host,
                             port=request.url.port, target=request.url.raw_path),
            headers=request.headers.raw, content=request.stream,
            extensions=request.extensions,
        )
        with httpx_errors():
            response = await self.pool.handle_async_request(core)
        assert isinstance(response.stream, AsyncIterable)
        return httpx.Response(status_code=response.status, headers=response.headers,
                              stream=_Body(response.stream, response),
                              extensions=response.extensions)

    async def aclose(self) -> None:
        await self.pool.aclose()


def ssl_context(endpoint: EndpointConfig) -> ssl.SSLContext | None:
    """The endpoint's TLS settings as a context, one shared by every endpoint (and load
    stream) with the same settings; none for http://. Building one loads the CA bundle:
    about 28 ms of CPU and most of an idle client's memory (838 KiB), per endpoint before.
    A CA file that changed on disk gets a context of its own."""
    if not endpoint.url.startswith("https://"):
        return None
    tls = endpoint.tls_config
    key: tuple[object, ...] = (tls.insecure_skip_verify,)
    if tls.ca_file and not tls.insecure_skip_verify:  # insecure wins, as it always did
        try:
            st = os.stat(tls.ca_file)
            key = (False, str(tls.ca_file), st.st_mtime_ns, st.st_size)
        except OSError:
            key = (False, str(tls.ca_file))  # loading it below says what is wrong
    context = _CONTEXTS.get(key)
    if context is None:
        context = _build_context(tls.insecure_skip_verify, tls.ca_file)
        if len(_CONTEXTS) >= MAX_CONTEXTS:  # old CA files' contexts: drop the oldest
            _CONTEXTS.pop(next(iter(_CONTEXTS)))
        _CONTEXTS[key] = context
    return context


_CONTEXTS: dict[tuple[object, ...], ssl.SSLContext] = {}
MAX_CONTEXTS = 64


def _build_context(insecure: bool, ca_file: object) -> ssl.SSLContext:
    if insecure:
        return httpx.create_ssl_context(verify=False)
    if ca_file:
        return ssl.create_default_context(cafile=str(ca_file))
    return httpx.create_ssl_context()


class ProbeClient(httpx.AsyncClient):
    """httpx's client on llmmon's transport. ``send`` below skips what httpx does around a
    transport for a request (auth flows, redirects, cookies, event hooks): a probe uses none
    of it, and it was a sixth of a probe's CPU."""

    def __init__(self, transport: httpx.AsyncBaseTransport, timeout: float) -> None:
        super().__init__(transport=transport, timeout=httpx.Timeout(timeout),
                         follow_redirects=False)
        self.stamping = transport


async def send(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """``client.send(request, stream=True)``, straight to the transport where it is llmmon's.
    No cookie is kept from one probe to the next: each asks as a new user would."""
    if type(client) is not ProbeClient or client.event_hooks["response"] \
            or client.event_hooks["request"]:
        return await client.send(request, stream=True)
    response = await client.stamping.handle_async_request(request)
    response.request = request
    return response


def make_client(endpoint: EndpointConfig, connections: int = 4,
                context: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    """A client for ``endpoint``; ``context`` shares one TLS context among many clients."""
    return ProbeClient(StampingTransport(context or ssl_context(endpoint), connections),
                       endpoint.timeout)
