"""Wire APIs, one module each. To add one: write ``providers/<name>.py`` with its config class
(an ``EndpointConfig`` with a ``provider: Literal["<name>"]`` tag) and its ``Provider``, then
add it to ``PROVIDERS`` below. The config file's ``endpoints`` accept exactly these."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field

from llmmon.config import EndpointConfig, Prompt
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


def auth_headers(endpoint: EndpointConfig, prompt: Prompt | None = None
                 ) -> tuple[dict[str, str], dict[str, str] | None]:
    """The headers (the provider's auth, the endpoint's extra headers, no compression) and
    query parameters (Azure's api-version) of a request beside the probe's own: a model
    list, a model description, logprobs. The provider's request for ``prompt`` (the
    endpoint's first by default) gives them."""
    spec = get_provider(endpoint).request(endpoint, prompt or endpoint.prompts[0],
                                          endpoint.api_key())
    return {**endpoint.extra_headers(), **spec.headers, "Accept-Encoding": "identity"}, \
        spec.params


def get_provider(endpoint: EndpointConfig) -> Provider[Any]:
    return PROVIDERS[endpoint.provider_name]
