"""Configuration building blocks: durations, names, secrets, what an endpoint and a sampler
are configured with. The whole file (``Settings``) and its loading are in ``settings.py``,
above the providers and samplers whose config classes it gathers; this package imports
neither, so a provider or sampler module can build on it without an import cycle.
"""

from llmmon.config.endpoints import (
    DEFAULT_PROMPT,
    Budget,
    Defaults,
    EndpointConfig,
    LoadConfig,
    Pricing,
    TLSConfig,
)
from llmmon.config.prompts import Expect, JSONExpect, Prompt
from llmmon.config.regex import compile_regex, regex_search
from llmmon.config.samplers import SamplerConfig
from llmmon.config.secrets import ApiKey
from llmmon.config.types import (
    ApiVersion,
    ConfigError,
    Duration,
    EnvName,
    Name,
    NameFilter,
    ReadableFile,
    Regex,
    SecretFile,
    StrictModel,
    format_duration,
    parse_duration,
    unique_names,
)

__all__ = [
    "DEFAULT_PROMPT", "ApiKey", "ApiVersion", "Budget", "ConfigError", "Defaults", "Duration",
    "EndpointConfig", "EnvName", "Expect", "JSONExpect", "LoadConfig", "Name", "NameFilter",
    "Pricing", "Prompt", "ReadableFile", "Regex", "SamplerConfig", "SecretFile", "StrictModel",
    "TLSConfig", "compile_regex", "format_duration", "parse_duration", "regex_search",
    "unique_names",
]
