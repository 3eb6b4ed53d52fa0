"""The cache probe: two requests that share a long prefix. The first starts with a fresh
nonce, so no prefix cache can hold it (cold); the second repeats that prefix with another
question (warm). Their TTFTs, side by side, show what the server's prefix cache saves, and
whether it works at all."""

from __future__ import annotations

import secrets

import httpx

from llmmon.config import EndpointConfig, Prompt
from llmmon.config.endpoints import CacheProbeConfig
from llmmon.probe.result import ProbeResult
from llmmon.probe.run import run_probe

# Plain words, cycled: a tokenizer makes about one token of each.
_WORDS = ("river", "stone", "garden", "window", "letter", "morning", "silver", "market",
          "candle", "forest", "harbor", "violin", "meadow", "lantern", "orchard", "pebble",
          "thunder", "basket", "ribbon", "valley")


def cache_prompts(config: CacheProbeConfig, nonce: str | None = None) -> tuple[Prompt, Prompt]:
    """The cold and the warm prompt: the same ``prefix_words`` after the nonce, then two
    different questions, so the warm one is no exact repeat a response cache could serve."""
    nonce = nonce or secrets.token_hex(8)
    body = " ".join(_WORDS[i % len(_WORDS)] for i in range(config.prefix_words))
    prefix = f"Session {nonce}. Read this list of words: {body}.\n"
    cold = Prompt(name="cache-cold", max_tokens=config.max_tokens,
                  text=prefix + "What is the first word of the list? Answer in one word.")
    warm = Prompt(name="cache-warm", max_tokens=config.max_tokens,
                  text=prefix + "What is the last word of the list? Answer in one word.")
    return cold, warm


async def run_cache_probe(client: httpx.AsyncClient, endpoint: EndpointConfig,
                          config: CacheProbeConfig) -> tuple[ProbeResult, ProbeResult | None]:
    """Cold then warm, one after the other (a warm request racing the cold one would find
    nothing cached); no warm request when the cold one failed."""
    cold_prompt, warm_prompt = cache_prompts(config)
    cold = await run_probe(client, endpoint, cold_prompt, nonce=False)
    if not cold.ok:
        return cold, None
    return cold, await run_probe(client, endpoint, warm_prompt, nonce=False)
