"""The models a server lists, for the hint of a probe whose model the server does not know."""

from __future__ import annotations

import json
from typing import Any

import httpx

from llmmon.config import EndpointConfig

MAX_LIST_BYTES = 256 << 10
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
    names = [item.get(name_key) for item in items if isinstance(item, dict)]
    return [name[:100] for name in names if isinstance(name, str)][:50]
