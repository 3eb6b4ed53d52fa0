"""What a server says about the model it serves, asked on the caller's client (the daemon
passes the endpoint's own, so the TLS settings are the endpoint's) on a slow schedule: nothing
here changes often. The public face of three modules: ``modelfacts`` reads each server's
description (``ModelInfo``), ``quantization`` keeps the fixed label vocabulary."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx

from llmmon.config import EndpointConfig
from llmmon.probe.body import TooLarge, read_body
from llmmon.probe.modelfacts import (
    ModelInfo,
    complete,
    from_name,
    from_ollama,
    from_ollama_ps,
    from_ollama_show,
    from_openai_models,
    from_tgi_info,
    merge,
    parameters_from,
)
from llmmon.probe.quantization import QUANTIZATIONS, bits_per_weight, quantization_label
from llmmon.providers import auth_headers
from llmmon.providers.base import ProtocolError

__all__ = ["QUANTIZATIONS", "ModelInfo", "bits_per_weight", "complete", "fetch_model_info",
           "from_name", "from_ollama", "from_ollama_ps", "from_ollama_show",
           "from_openai_models", "from_tgi_info", "merge", "parameters_from",
           "quantization_label"]

log = logging.getLogger(__name__)

INFO_LIMIT = 1 << 20  # bytes of one description; llama.cpp's and Ollama's are a few KiB


async def fetch_model_info(client: httpx.AsyncClient, endpoint: EndpointConfig,
                           timeout: float = 5.0) -> ModelInfo:  # noqa: ASYNC109
    """Whatever the server tells about its model within ``timeout`` seconds, completed by
    what its name says. Asked as a probe asks: on ``client``, with the provider's own auth
    headers and the endpoint's extra headers, each body read raw under ``INFO_LIMIT``. Never
    raises for what a server does (an error status, HTML, a body too large or too deep, no
    answer): that only leaves less known. (``timeout`` is the whole call's budget, both of
    Ollama's routes together: ASYNC109 would have each caller wrap the call instead, but
    each wants the same bound, and a partial answer kept.)"""
    found = None
    try:
        headers, _ = auth_headers(endpoint)
    except (OSError, ValueError) as exc:  # a key file gone: the probes report it
        log.debug("no model information from %s: %s", endpoint.name, type(exc).__name__)
    else:
        deadline = asyncio.get_running_loop().time() + timeout
        model, pattern = endpoint.model, endpoint.served_model

        async def ask(method: str, path: str, body: dict[str, str] | None = None) -> Any:
            return await _ask(client, endpoint, method, path, headers, body, deadline)

        provider = endpoint.provider_name
        if provider == "openai":
            found = from_openai_models(await ask("GET", "/models"), model, pattern)
        elif provider == "ollama":
            # Asked one after the other under one deadline: what came before it is kept.
            show = await ask("POST", "/api/show", {"model": model})
            found = from_ollama(show, await ask("GET", "/api/ps"), model, pattern)
        elif provider == "tgi":
            found = from_tgi_info(await ask("GET", "/info"))
    return complete(found or ModelInfo(), endpoint.model)


async def _ask(client: httpx.AsyncClient, endpoint: EndpointConfig, method: str, path: str,
               headers: dict[str, str], body: dict[str, str] | None, deadline: float) -> Any:
    """The JSON one route under the endpoint's URL answers with, or None (any status but 200,
    no JSON, too large, too deep, past the deadline, any transport error)."""
    try:
        async with asyncio.timeout_at(deadline), client.stream(
                method, endpoint.url + path, headers=headers, json=body) as response:
            if response.status_code != 200:
                return None
            return json.loads(await read_body(response, INFO_LIMIT))
    except (httpx.HTTPError, TooLarge, ProtocolError, TimeoutError, ValueError,
            RecursionError) as exc:  # ValueError: not JSON, not UTF-8, a 5000-digit number
        log.debug("no model information from %s %s: %s", endpoint.name, path,
                  type(exc).__name__)
        return None
