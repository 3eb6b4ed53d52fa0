"""One synthetic request, measured: the probe owns the clock, the deadline and the errors.

Timestamps are CLOCK_MONOTONIC nanoseconds. With llmmon's own network backend
(``transport.py``) a chunk's stamp is the kernel's receive time of its bytes and TTFT starts
just before the request's last byte is handed to ``send``; otherwise both are taken in
Python, the moment the transport hands a chunk over, before it is parsed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import httpx
from sniffio import current_async_library_cvar

from llmmon.config import EndpointConfig, Prompt
from llmmon.probe.body import TooLarge, read_body, read_prefix
from llmmon.probe.checks import describe, passes
from llmmon.probe.cost import cost_usd
from llmmon.probe.diagnose import (
    exception_hint,
    mentions_unknown_model,
    model_matches,
    models_hint,
    redact,
    status_hint,
    wrong_model_hint,
)
from llmmon.probe.models import LIST_TIMEOUT, ListedModels, list_models
from llmmon.probe.result import ErrorReason, ProbeResult, apply_events, read_headers
from llmmon.probe.streamed import read_stream
from llmmon.probe.trace import NS, Trace
from llmmon.probe.transport import send
from llmmon.providers import auth_headers, get_provider
from llmmon.providers.base import ProtocolError, ServerError, StreamDecoder, error_message

log = logging.getLogger(__name__)
ERROR_BODY_BYTES = 16 << 10  # of an error response, read for its message


def status_reason(status: int) -> ErrorReason | None:
    if status == 429:
        return "rate_limited"
    if 400 <= status < 500:
        return "http_4xx"
    if status >= 500:
        return "http_5xx"
    if status >= 300:
        return "protocol"  # redirects are not followed: a key must never travel elsewhere
    return None


@dataclass
class Prepared:
    """A probe's request, built before it is asked for (the load probe's, ``load.py``)."""

    prompt: Prompt  # with its nonce, where it has one
    request: httpx.Request
    headers: dict[str, str]
    trace: Trace


def prepare(client: httpx.AsyncClient, endpoint: EndpointConfig, prompt: Prompt,
            nonce: bool | None = None) -> Prepared | None:
    """The request ``run_probe`` would build; None where building it fails (a key file that
    cannot be read): run_probe then builds it, and reports why."""
    if endpoint.cache_bust if nonce is None else nonce:
        prompt = prompt.with_nonce()
    trace = Trace()
    try:
        return Prepared(prompt, *_build(client, endpoint, prompt, trace), trace)
    except Exception:
        return None


def _build(client: httpx.AsyncClient, endpoint: EndpointConfig, prompt: Prompt, trace: Trace
           ) -> tuple[httpx.Request, dict[str, str]]:
    spec = get_provider(endpoint).request(endpoint, prompt, endpoint.api_key())
    headers = {**endpoint.extra_headers(), "Accept-Encoding": "identity", **spec.headers}
    return client.build_request("POST", spec.url, json=spec.body, headers=headers,
                                params=spec.params, extensions={"trace": trace}), headers


async def run_probe(client: httpx.AsyncClient, endpoint: EndpointConfig, prompt: Prompt, *,
                    decoder: StreamDecoder | None = None, listed: ListedModels | None = None,
                    nonce: bool | None = None, prepared: Prepared | None = None
                    ) -> ProbeResult:
    """Run one probe under ``endpoint.timeout``. Never raises (but for cancellation): every
    failure ends as a bounded reason, with a detail and a hint where there is one.

    ``decoder`` replaces the provider's stream decoder (benchmarks wrap it to see raw bytes).
    ``listed``, the endpoint's model-list cache, lets a successful probe also be checked
    against the models the server lists (for servers that echo the requested name).
    ``nonce`` (default: the endpoint's ``cache_bust``) starts the prompt with a fresh one.
    ``prepared`` is the request, built (``prepare``) and maybe already sent.
    """
    # httpcore asks sniffio which async library runs it for every lock and event it sets up;
    # told once, sniffio answers from the context instead of looking for the current task.
    current_async_library_cvar.set("asyncio")
    if prepared is not None:
        prompt, trace = prepared.prompt, prepared.trace
    else:
        if endpoint.cache_bust if nonce is None else nonce:
            prompt = prompt.with_nonce()
        trace = Trace()
    result = ProbeResult(endpoint.name, prompt.name)
    start = time.monotonic_ns()
    try:
        async with asyncio.timeout(endpoint.timeout):
            await _exchange(client, endpoint, prompt, result, trace, decoder, prepared)
    except Exception as exc:  # the point: nothing a server sends may escape
        try:
            _failed(result, endpoint, exc)
        except Exception:  # describing it failed: the reason stands without a detail
            result.error = result.error or "protocol"
    # From the request's first byte on the wire (Trace.began) to the stamp of the answer's
    # last byte, plus this probe's connection set-up: the client's work around them is not
    # the server's time. Without them (a failure, or no stamp), from the start to now.
    result.e2e = ((result.ended_ns or time.monotonic_ns()) - (trace.began() or start)
                  + trace.setup_ns()) / NS
    result.flush_text()
    result.phases = trace.phases()
    result.finished_unix = time.time()
    try:
        await _conclude(client, endpoint, prompt, result, listed, start)
    except Exception as exc:  # an answer llmmon cannot judge (or a bug): still a verdict
        log.debug("probe %s: judging: %s", endpoint.name, type(exc).__name__, exc_info=True)
        result.error = result.error or "protocol"
        result.detail = f"the answer could not be judged ({type(exc).__name__})"
    if result.detail or result.hint:
        secrets = endpoint.secrets()  # read once: it may read key files
        if result.detail:
            result.detail = redact(result.detail, secrets)
        if result.hint:  # llmmon's words, and model names: only the configured secrets masked
            result.hint = redact(result.hint, secrets, patterns=False)
    return result


async def _conclude(client: httpx.AsyncClient, endpoint: EndpointConfig, prompt: Prompt,
                    result: ProbeResult, listed: ListedModels | None, start: int) -> None:
    result.cost_usd = cost_usd(endpoint.pricing, result.prompt_tokens, result.output_tokens,
                               result.cached_tokens, result.cache_write_tokens)
    _judge(result, endpoint, prompt)
    # The list is asked within what is left of the probe's time: the job's deadline holds.
    left = endpoint.timeout - (time.monotonic_ns() - start) / NS
    if result.ok and listed is not None and endpoint.check_model:
        await _check_listed(client, endpoint, result, listed, left)


def _failed(result: ProbeResult, endpoint: EndpointConfig, exc: Exception) -> None:
    """The reason and detail of an exception that ended a probe."""
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        result.error = "timeout"
        waited = f"{endpoint.timeout:g} s"
        result.detail = (f"no response within {waited}" if result.status is None else
                         f"the answer stopped after {result.content_chunks} chunks "
                         f"({waited} timeout)")
    elif isinstance(exc, httpx.ConnectError | httpx.UnsupportedProtocol):
        result.error = "connect"
        result.detail = str(exc) or type(exc).__name__
        result.hint = exception_hint(endpoint, result.detail)
    elif isinstance(exc, ServerError):
        # An error the server sent inside a 200 response: what the same error gets unstreamed.
        result.error = status_reason(exc.status) or "http_5xx"
        result.detail = f"error in the response ({exc.status}): {exc.message}"
        result.hint = status_hint(endpoint, exc.status, exc.message)
    elif isinstance(exc, TooLarge):
        result.error = "too_large"
        result.detail = f"the response passed max_response_bytes " \
                        f"({endpoint.max_response_bytes} bytes)"
    elif isinstance(exc, ProtocolError | httpx.HTTPError):
        result.error = result.error or "protocol"
        result.detail = result.detail or str(exc) or type(exc).__name__
        result.hint = result.hint or exception_hint(endpoint, str(exc))
    elif isinstance(exc, OSError | UnicodeError) and result.status is None:
        # Raised before anything was sent: a key or header file that cannot be read now.
        result.error = "protocol"
        # A file's problem names the file and the reason, never its content; an encoding
        # error would quote a character of the key, so only its kind is said.
        why = str(exc) if isinstance(exc, OSError) else type(exc).__name__
        result.detail = f"a configured secret cannot be read ({why}): the request was not sent"
    else:  # a response llmmon cannot digest (or a bug): still a failed probe, not a crash
        log.debug("probe %s: %s", endpoint.name, type(exc).__name__, exc_info=True)
        result.error = "protocol"
        result.detail = f"the response could not be processed ({type(exc).__name__})"


def _judge(result: ProbeResult, endpoint: EndpointConfig, prompt: Prompt) -> None:
    """A response that arrived whole may still not serve a user: no answer, another model,
    or a wrong answer."""
    if not result.ok:
        return
    if not result.text.strip():
        result.error = "empty"
        thinking = " (only thinking tokens)" if result.time_to_first_reasoning is not None \
            else ""
        result.detail = f"the server answered {result.status} with no answer text{thinking}"
        result.hint = "a gateway whose upstream failed often answers like this"
        return
    served = result.served_model
    if endpoint.check_model and served is not None \
            and not model_matches(endpoint.model, served, endpoint.served_model):
        result.error = "wrong_model"
        result.detail = f"answered by model {served}"
        result.hint = wrong_model_hint(endpoint.model)
        return
    if prompt.expect is not None:
        result.check_passed = passes(prompt.expect, result.text)
        if not result.check_passed:
            result.error = "check_failed"
            result.detail = f"the answer does not meet {describe(prompt.expect)}"


async def _check_listed(client: httpx.AsyncClient, endpoint: EndpointConfig,
                        result: ProbeResult, listed: ListedModels, left: float) -> None:
    """A server that lists its models but none that matches serves another model, whatever
    name its responses echo back."""
    try:  # the probe's own headers, built only when the list is asked
        names = await listed.get(client, endpoint, lambda: auth_headers(endpoint)[0], left)
    except Exception:  # the list is a second opinion: without it, the verdict stands
        return
    if names and not any(model_matches(endpoint.model, n, endpoint.served_model) for n in names):
        result.error, result.check_passed = "wrong_model", None
        result.detail = f"the server lists only: {', '.join(names[:10])}"
        result.hint = wrong_model_hint(endpoint.model)


async def _exchange(client: httpx.AsyncClient, endpoint: EndpointConfig, prompt: Prompt,
                    result: ProbeResult, trace: Trace, decoder: StreamDecoder | None,
                    prepared: Prepared | None) -> None:
    max_bytes = endpoint.max_response_bytes
    provider = get_provider(endpoint)
    request, headers = (prepared.request, prepared.headers) if prepared is not None \
        else _build(client, endpoint, prompt, trace)
    trace.began_ns = time.monotonic_ns()
    try:
        response = await send(client, request)
    except httpx.RemoteProtocolError:
        if not trace.closed_as_reused():
            raise
        result.retried = True
        trace.at.clear()  # the phases are the new connection's
        response = await send(client, request)
    trace.stream = response.extensions.get("network_stream")
    result.rtt = trace.rtt()  # now: httpx closes the response at the body's end (trace.py)
    try:
        result.status = response.status_code
        read_headers(result, response.headers)
        if reason := status_reason(response.status_code):
            result.error = reason
            await _explain_status(client, endpoint, response, result, headers)
            return
        content_type = response.headers.get("content-type", "")
        if endpoint.stream:
            if not content_type.startswith(provider.stream_content_types):
                raise ProtocolError(_unexpected(content_type))
            decoder = decoder or provider.stream_decoder(endpoint)
            await read_stream(response, decoder, result, trace, max_bytes)
        else:
            if "json" not in content_type:
                raise ProtocolError(_unexpected(content_type))
            body = await read_body(response, max_bytes)
            apply_events(result, provider.parse_body(endpoint, body), time.monotonic_ns(), None)
    finally:
        await response.aclose()


def _unexpected(content_type: str) -> str:
    shown = content_type.split(";", 1)[0].strip()[:60] or "none"
    if "html" in shown:
        return f"the server answered HTML ({shown}), not the API: a proxy's page or a wrong URL"
    return f"unexpected content type {shown}"


async def _explain_status(client: httpx.AsyncClient, endpoint: EndpointConfig,
                          response: httpx.Response, result: ProbeResult,
                          headers: dict[str, str]) -> None:
    """Detail and hint for an error status: the server's message, and for an unknown model
    the models the server lists."""
    status = response.status_code
    if 300 <= status < 400:
        location = response.headers.get("location", "").split("?", 1)[0][:100]
        result.detail = f"{status} redirect to {location or '(nowhere)'}"
    else:
        message = error_message(await read_prefix(response, ERROR_BODY_BYTES))[:2000]
        result.detail = f"{status}: {message}" if message.strip() else f"HTTP {status}"
    result.hint = status_hint(endpoint, status, result.detail)
    if status in (400, 404) and mentions_unknown_model(result.detail):
        try:  # its own bound: a slow list must not turn this answer into a timeout
            async with asyncio.timeout(LIST_TIMEOUT):
                listed = await list_models(client, endpoint, headers)
        except TimeoutError:
            listed = None
        if listed is not None:
            result.hint = models_hint(endpoint.model, listed)
