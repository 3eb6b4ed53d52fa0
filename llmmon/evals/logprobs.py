"""The log-probabilities a server gives the tokens of a text it is shown, for perplexity: an
OpenAI-style completions request with ``echo`` and ``logprobs`` (vLLM, llama-cpp-python,
OpenAI's legacy completions). Servers that do not echo logprobs (llama.cpp's llama-server,
chat-only APIs) give an item error, never a made-up figure."""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from llmmon.config import EndpointConfig, Prompt
from llmmon.probe.body import TooLarge, read_body
from llmmon.probe.cost import cost_usd
from llmmon.probe.run import status_reason
from llmmon.providers import auth_headers
from llmmon.providers.base import count

ECHO_PROVIDERS = ("openai",)


@dataclass
class Logprobs:
    logprobs: list[float | None] = field(default_factory=list)
    error: str | None = None
    detail: str | None = None
    seconds: float | None = None
    tokens: int = 0
    cost_usd: float = 0.0


async def prompt_logprobs(client: httpx.AsyncClient, endpoint: EndpointConfig, text: str
                          ) -> Logprobs:
    """The logprob of each token of ``text`` (the first is None: nothing precedes it)."""
    out = Logprobs()
    if endpoint.provider_name not in ECHO_PROVIDERS:
        out.error = "unsupported"
        out.detail = "perplexity needs an OpenAI-compatible completions API (echo, logprobs)"
        return out
    began = time.monotonic()
    try:
        async with asyncio.timeout(endpoint.timeout):
            await _ask(client, endpoint, text, out)
    except (TimeoutError, httpx.TimeoutException):
        out.error, out.detail = "timeout", f"no answer within {endpoint.timeout:g} s"
    except httpx.ConnectError:
        out.error, out.detail = "connect", "no connection"
    except httpx.HTTPError as exc:
        out.error, out.detail = "protocol", f"the answer could not be read ({type(exc).__name__})"
    except OSError as exc:  # a key or header file that cannot be read now: nothing was sent
        out.error = "protocol"
        out.detail = f"a configured secret cannot be read ({exc}): the request was not sent"
    except (TooLarge, ValueError, RecursionError) as exc:
        out.error, out.detail = "protocol", f"the answer could not be read ({type(exc).__name__})"
    out.seconds = time.monotonic() - began
    return out


async def _ask(client: httpx.AsyncClient, endpoint: EndpointConfig, text: str,
               out: Logprobs) -> None:
    headers, params = auth_headers(endpoint, Prompt(name="perplexity", text=text))
    body = {"model": endpoint.model, "prompt": text, "max_tokens": 1, "echo": True,
            "logprobs": 1, "temperature": 0, "stream": False}
    async with client.stream("POST", endpoint.url + "/completions", json=body, headers=headers,
                             params=params) as response:
        if reason := status_reason(response.status_code):
            out.error, out.detail = reason, f"HTTP {response.status_code} from /completions"
            return
        data = json.loads(await read_body(response, endpoint.max_response_bytes))
    usage = data.get("usage") if isinstance(data, dict) else None
    if isinstance(usage, dict):
        prompt, output = count(usage.get("prompt_tokens")), count(usage.get("completion_tokens"))
        out.tokens = (prompt or 0) + (output or 0)
        out.cost_usd = cost_usd(endpoint.pricing, prompt, output, None, None)
    out.logprobs = text_logprobs(data, len(text))


def text_logprobs(data: Any, length: int) -> list[float | None]:
    """The token logprobs of an echoed prompt of ``length`` characters: tokens that start at
    or past its end are the generated ones (vLLM lists them, llama-cpp-python does not)."""
    choices = data.get("choices") if isinstance(data, dict) else None
    first = choices[0] if isinstance(choices, list) and choices else None
    logprobs = first.get("logprobs") if isinstance(first, dict) else None
    if not isinstance(logprobs, dict):
        return []
    values, offsets = logprobs.get("token_logprobs"), logprobs.get("text_offset")
    if not isinstance(values, list):
        return []
    if isinstance(offsets, list) and len(offsets) == len(values):
        values = [v for v, at in zip(values, offsets, strict=True)
                  if not isinstance(at, int) or at < length]
    # JSON null is a token with nothing before it; anything else that is not a number is
    # junk, passed on as NaN so that perplexity() refuses the lot instead of skipping it.
    return [None if v is None else float(v) if _number(v) else math.nan for v in values]


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
