"""What an endpoint to probe is configured with, whatever its provider. Each provider's own
config class (``providers/<name>.py``) extends ``EndpointConfig`` with its ``provider`` tag."""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from llmmon.config.prompts import Prompt
from llmmon.config.secrets import ApiKey, require_env
from llmmon.config.types import (
    Duration,
    EnvName,
    GraceDuration,
    Name,
    Ratio,
    ReadableFile,
    Regex,
    SecretFile,
    StrictModel,
    unique_names,
)

# --- endpoints -------------------------------------------------------------------------


class Pricing(StrictModel):
    """US dollars per million tokens, as providers list them. Cached prompt tokens (read
    from a prompt cache, or written to one) cost the input price unless priced here."""

    input_per_million: float = Field(default=0.0, ge=0)
    output_per_million: float = Field(default=0.0, ge=0)
    cached_input_per_million: float | None = Field(default=None, ge=0)
    cache_write_per_million: float | None = Field(default=None, ge=0)


class Budget(StrictModel):
    """Once a UTC day's probes have used this much, further probes that day are skipped."""

    daily_usd: float | None = Field(default=None, gt=0)
    daily_tokens: int | None = Field(default=None, gt=0)


class HeaderSecret(StrictModel):
    """A header value kept out of the config file: from an environment variable or a file."""

    env: EnvName | None = None
    file: SecretFile | None = None

    @field_validator("env")
    @classmethod
    def _check_env(cls, value: str | None, info: ValidationInfo) -> str | None:
        return require_env(value, info) if value is not None else None

    @model_validator(mode="after")
    def _one(self) -> HeaderSecret:
        if (self.env is None) == (self.file is None):
            raise ValueError("give env or file, not both")
        return self


# Header names a probe may add. Framing and routing headers are httpx's to set: a configured
# Content-Length or Host would desynchronise or redirect the request.
HeaderName = Annotated[str, Field(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")]
_RESERVED_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "upgrade",
                     "te", "trailer", "keep-alive", "expect", "accept-encoding"}
MAX_EXTRA_BODY = 64 << 10  # bytes of JSON


class TLSConfig(StrictModel):
    """How to trust an https endpoint, named as in Prometheus's tls_config."""

    ca_file: ReadableFile | None = None
    insecure_skip_verify: bool = False


class LoadConfig(StrictModel):
    """A bounded burst of concurrent requests, to watch throughput under concurrency."""

    concurrency: int = Field(default=4, ge=1, le=256)
    requests: int = Field(default=16, ge=1, le=10_000)
    every: Duration = 600.0
    timeout: Duration = 120.0  # for the whole burst
    # With the GPU sampler on: this host's GPU energy during the burst, per output token.
    # Off for an endpoint those GPUs do not serve (a remote API): their energy is not its.
    energy: bool = True
    # Processes the burst's streams are spread over (probe/spread.py); 0: one per CPU
    # llmmon may use. One event loop reads about 30,000 streamed events a second: past
    # that, its reads come late and take two events at once.
    processes: int = Field(default=1, ge=0, le=64)
    # The nice value of those processes (with processes ≥ 2). A stamp is the kernel's, but a
    # read that comes late takes two events at once and stamps both with the second: with a
    # busy neighbour on the CPUs, -10 let the readers run first (needs CAP_SYS_NICE below 0;
    # without it, a warning, and the burst runs at the daemon's own).
    nice: int = Field(default=0, ge=-20, le=19)


class CacheProbeConfig(StrictModel):
    """Pairs of requests sharing a long prefix: cold (a fresh nonce starts it) then warm (the
    same prefix again), to see what a server's prefix cache saves on TTFT."""

    every: Duration = 600.0
    prefix_words: int = Field(default=300, ge=20, le=50_000)  # about as many tokens
    max_tokens: int = Field(default=4, ge=1, le=1000)  # TTFT is the point, not the answer


class SLO(StrictModel):
    """An endpoint's objectives: llmmon counts each probe good or bad against them
    (``llmmon_probe_slo_events_total``) and the burn-rate alerts read those counts, so
    endpoints can have different thresholds without rule changes."""

    availability: Ratio = 0.995  # probes the server answers (a wrong answer still answered)
    accuracy: Ratio = 0.95  # answers that pass their check, from the configured model
    ttft: Duration = 2.0  # a successful probe's first token within this...
    ttft_target: Ratio = 0.95  # ...for this share of probes
    itl: Duration = 0.1  # a gap between streamed chunks within this...
    itl_target: Ratio = 0.95  # ...for this share of gaps


# Built without validation (its values are literals): validating would build Prompt's own
# validator at import, ~0.5 MiB of RSS that config loading does not need.
DEFAULT_PROMPT = Prompt.model_construct(
    name="default", text="Count from 1 to 20, separated by commas. Reply with the numbers only."
)


class Defaults(StrictModel):
    """Values every endpoint inherits unless it sets its own."""

    interval: Duration = 30.0
    timeout: Duration = 20.0
    max_tokens: int = Field(default=64, ge=1, le=1_000_000)
    stream: bool = True
    slo: SLO = Field(default_factory=SLO)
    startup_grace: GraceDuration = 600.0
    cache_bust: bool = True
    model_info: GraceDuration = 3600.0


class EndpointConfig(StrictModel):
    name: Name
    url: str
    model: str = Field(min_length=1, max_length=200)
    interval: Duration = 30.0
    timeout: Duration = 20.0
    stream: bool = True
    max_tokens: int = Field(default=64, ge=1, le=1_000_000)
    # Stop reading a response past this many bytes: a probe asks for a few dozen tokens.
    max_response_bytes: int = Field(default=4 << 20, ge=1024, le=1 << 30)
    api_key_env: EnvName | None = None
    api_key_file: SecretFile | None = None
    # Request shaping that real servers need.
    system: str | None = Field(default=None, min_length=1, max_length=100_000)
    temperature: float | None = Field(default=0.0, ge=0, le=2)  # null: leave it out
    headers: dict[HeaderName, SecretStr | HeaderSecret] = Field(default_factory=dict)
    extra_body: dict[str, Any] = Field(default_factory=dict)  # merged into the request body
    # The response's `model` must name the configured one (or match served_model).
    check_model: bool = True
    served_model: Regex | None = None
    prompts: list[Prompt] = Field(default_factory=lambda: [DEFAULT_PROMPT], min_length=1)
    tls_config: TLSConfig = Field(default_factory=TLSConfig)
    pricing: Pricing | None = None
    budget: Budget | None = None
    load: LoadConfig | None = None
    slo: SLO = Field(default_factory=SLO)
    # Failures before the endpoint's first answer, within this long after llmmon (or the
    # endpoint) started, count as `starting`, not down: a model still loading its weights.
    startup_grace: GraceDuration = 600.0
    # A nonce starts every probe prompt, so no prefix cache answers it and TTFT stays the
    # cold time a new user sees (vLLM's prefix caching is on by default). Off: the prompt
    # is sent as written.
    cache_bust: bool = True
    cache_probe: CacheProbeConfig | None = None
    # How often to ask the server what model it serves (size, context, quantisation);
    # 0s: never.
    model_info: GraceDuration = 3600.0
    _api_key: ApiKey | None = PrivateAttr(default=None)
    _header_keys: dict[str, ApiKey] = PrivateAttr(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        try:
            url = httpx.URL(value)
        except (httpx.InvalidURL, TypeError) as exc:
            raise ValueError("is not a valid URL") from exc
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("must be an http:// or https:// URL with a host")
        if url.userinfo:
            raise ValueError("must not carry credentials; use api_key_env or api_key_file")
        return value.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _check_key_env(cls, value: str | None, info: ValidationInfo) -> str | None:
        return require_env(value, info) if value is not None else None

    _unique_prompts = field_validator("prompts")(unique_names("prompt"))

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, value: dict[str, SecretStr | HeaderSecret]
                       ) -> dict[str, SecretStr | HeaderSecret]:
        for name, header in value.items():
            if name.lower() in _RESERVED_HEADERS:
                raise ValueError(f"{name} is set by llmmon itself")
            if isinstance(header, SecretStr) and any(
                    c in header.get_secret_value() for c in "\r\n\0"):
                raise ValueError(f"the value of {name} contains a line break")
        return value

    @field_validator("extra_body")
    @classmethod
    def _check_extra_body(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            size = len(json.dumps(value))
        except (TypeError, ValueError):
            raise ValueError("must be plain JSON data") from None
        if size > MAX_EXTRA_BODY:
            raise ValueError(f"is larger than {MAX_EXTRA_BODY} bytes of JSON")
        return value

    @model_validator(mode="after")
    def _bind_key(self) -> EndpointConfig:
        if self.api_key_env and self.api_key_file:
            raise ValueError("set api_key_env or api_key_file, not both")
        if self.api_key_env or self.api_key_file:
            self._api_key = ApiKey(env=self.api_key_env, path=self.api_key_file)
        self._header_keys = {name: ApiKey(env=h.env, path=h.file)
                             for name, h in self.headers.items() if isinstance(h, HeaderSecret)}
        return self

    def api_key(self) -> SecretStr | None:
        """The current key, re-read from its file when the file changed."""
        return self._api_key.get() if self._api_key else None

    def extra_headers(self) -> dict[str, str]:
        """The configured headers' current values (secret ones read from env or file)."""
        out = {}
        for name, header in self.headers.items():
            if isinstance(header, SecretStr):
                out[name] = header.get_secret_value()
            elif value := self._header_keys[name].get():
                out[name] = value.get_secret_value()
        return out

    def secrets(self) -> list[str]:
        """Every secret value this endpoint sends, to be masked wherever text is shown; those
        that cannot be read now (a key file gone) are not sent either."""
        values = [h.get_secret_value() for h in self.headers.values()
                  if isinstance(h, SecretStr)]
        for source in [self._api_key, *self._header_keys.values()]:
            try:
                value = source.get() if source else None
            except (OSError, ValueError):
                continue
            if value:
                values.append(value.get_secret_value())
        return values

    @property
    def provider_name(self) -> str:
        """The provider tag of a concrete config (``provider`` on each subclass)."""
        return str(getattr(self, "provider", ""))

    def identity(self) -> tuple[tuple[str, str, str], str]:
        """The endpoint's label values and URL host: what its series are named by."""
        return (self.name, self.provider_name, self.model), httpx.URL(self.url).host

    def settings_key(self) -> tuple[type, dict[str, object]]:
        """What an endpoint is configured with. Pydantic's == also compares private
        attributes, and every load makes a new ApiKey, so == would call every keyed endpoint
        changed."""
        return type(self), self.model_dump()
