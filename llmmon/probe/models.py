"""The models a server lists: for the hint of a probe whose model the server does not know,
and for servers that echo whatever model they are asked for (llama-cpp-python does), whose
responses cannot tell a wrong model apart."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from llmmon.config import EndpointConfig

MAX_LIST_BYTES = 256 << 10
MAX_NAMES = 2000
LIST_TTL = 300.0  # seconds a server's model list is trusted before it is asked again
LIST_TIMEOUT = 5.0
# provider → (path under the endpoint's url, list key, name key)
ROUTES = {
    "openai": ("/models", "data", "id"),
    "anthropic": ("/v1/models", "data", "id"),
    "ollama": ("/api/tags", "models", "name"),
}


async def list_models(client: httpx.AsyncClient, endpoint: EndpointConfig,
                      headers: dict[str, str]) -> list[str] | None:
    """Model names from the server's list route, or None when it has none or fails. Called
    inside the probe's deadline, with the probe's own headers (the route may want the key)."""
    route = ROUTES.get(endpoint.provider_name)
    if route is None:
        return None
    path, list_key, name_key = route
    try:
        headers = {**headers, "Accept-Encoding": "identity"}  # read raw: it is not inflated
        async with client.stream("GET", endpoint.url + path, headers=headers) as response:
            if response.status_code != 200:
                return None
            body = b""
            async for chunk in response.aiter_raw():
                body += chunk
                if len(body) > MAX_LIST_BYTES:
                    return None
        obj: Any = json.loads(body)
    except (httpx.HTTPError, ValueError, RecursionError):
        return None
    items = obj.get(list_key) if isinstance(obj, dict) else None
    if not isinstance(items, list):
        return None
    names = [item.get(name_key) for item in items[:MAX_NAMES] if isinstance(item, dict)]
    return [name for name in names if isinstance(name, str) and len(name) <= 1000]


class ListedModels:
    """One endpoint's model list, fetched at most every ``LIST_TTL`` seconds. Only OpenAI's
    list route is one whole list (Anthropic's is paged), so only it is consulted."""

    def __init__(self) -> None:
        self.names: list[str] | None = None
        self._fetched = -LIST_TTL

    async def get(self, client: httpx.AsyncClient, endpoint: EndpointConfig,
                  headers: Callable[[], dict[str, str]], seconds: float) -> list[str] | None:
        """The names, asked again when stale if ``seconds`` (at most) are left for it;
        ``headers`` are only built then."""
        if endpoint.provider_name != "openai":
            return None
        if time.monotonic() - self._fetched >= LIST_TTL and seconds > 0.05:
            self._fetched = time.monotonic()
            try:
                async with asyncio.timeout(min(LIST_TIMEOUT, seconds)):
                    self.names = await list_models(client, endpoint, headers())
            except TimeoutError:
                self.names = None
        return self.names
