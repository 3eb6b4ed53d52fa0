"""Wire APIs, one module each. To add one: write ``providers/<name>.py`` with its config class
(an ``EndpointConfig`` with a ``provider: Literal["<name>"]`` tag) and its ``Provider``, then
add it to ``PROVIDERS`` below. The config file's ``endpoints`` accept exactly these."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field

from llmmon.config import EndpointConfig
from llmmon.providers import anthropic, ollama, openai, tgi
from llmmon.providers.base import Provider

PROVIDERS: dict[str, Provider[Any]] = {
    "openai": openai.OpenAI(),
    "anthropic": anthropic.Anthropic(),
    "ollama": ollama.Ollama(),
    "tgi": tgi.TGI(),
}

if TYPE_CHECKING:
    Endpoint = EndpointConfig
else:
    # Every registered provider's config, told apart by its `provider` tag.
    Endpoint = Annotated[Union[tuple(p.config for p in PROVIDERS.values())],  # noqa: UP007
                         Field(discriminator="provider")]


def get_provider(endpoint: EndpointConfig) -> Provider[Any]:
    return PROVIDERS[endpoint.provider_name]
