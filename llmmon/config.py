"""Configuration: a YAML file plus ``LLMMON_*`` environment overrides, validated strictly.

Validation errors name the path of the bad field and the reason, never the input value:
pydantic echoes inputs in its messages, and an input may be a secret.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "LLMMON_"
# Read by the CLI, not a setting: it names the file the settings come from.
CONFIG_PATH_ENV = "LLMMON_CONFIG"
DEFAULT_CONFIG_PATH = Path("/etc/llmmon/config.yaml")
PROVIDERS = ("openai", "anthropic", "ollama", "tgi")


class ConfigError(Exception):
    """A configuration that cannot be used; ``problems`` holds one line per bad field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


# --- durations -------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_HELP = "must be a duration such as 500ms, 30s, 2m or 1h30m"


def parse_duration(value: object) -> float:
    """Seconds from a Prometheus-style duration string, or from a bare YAML number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text, pos, seconds = value.strip(), 0, 0.0
        for match in _DURATION_PART.finditer(text):
            if match.start() != pos:
                raise ValueError(_DURATION_HELP)
            seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            pos = match.end()
        if pos != len(text):
            raise ValueError(_DURATION_HELP)
    else:
        raise ValueError(_DURATION_HELP)
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError("must be a positive duration")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest duration string that parses back to ``seconds`` (to the millisecond)."""
    millis = round(seconds * 1000)
    parts = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]

# Endpoint and prompt names become label values: keep them short and printable.
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]


def _compiles(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"is not a valid regular expression ({exc.msg})") from None
    return value


Regex = Annotated[str, AfterValidator(_compiles)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


# --- secrets ---------------------------------------------------------------------------


class ApiKey:
    """An API key from an environment variable (read once) or a file (re-read when it changes).

    A key file is re-read on change so that a rotated Kubernetes Secret takes effect without
    a restart. The value is only ever handed out as a ``SecretStr``.
    """

    def __init__(self, *, env: str | None = None, path: Path | None = None) -> None:
        self._path = path
        self._stamp: tuple[int, int] | None = None
        self._value = SecretStr(os.environ[env].strip()) if env else None

    def __repr__(self) -> str:
        return "ApiKey(**********)"

    def get(self) -> SecretStr | None:
        if self._path is None:
            return self._value
        stat = self._path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._value = SecretStr(self._path.read_text(encoding="utf-8").strip())
            self._stamp = stamp
        return self._value


# --- endpoints -------------------------------------------------------------------------


class JSONExpect(StrictModel):
    required_keys: list[str] = Field(default_factory=list)


class Expect(StrictModel):
    """What a correct answer looks like; every condition given must hold."""

    contains: str | None = Field(default=None, min_length=1)
    regex: Regex | None = None
    equals: str | None = None
    json_: JSONExpect | bool | None = Field(default=None, alias="json")
    number: float | None = None
    tolerance: float = Field(default=0.0, ge=0)
    ignore_case: bool = False

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _something(self) -> Expect:
        if (self.contains, self.regex, self.equals, self.json_, self.number) == (None,) * 5:
            raise ValueError("give at least one of contains, regex, equals, json, number")
        return self


class Prompt(StrictModel):
    name: Name
    text: str = Field(min_length=1, max_length=100_000)
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    expect: Expect | None = None


class Pricing(StrictModel):
    """US dollars per million tokens, as providers list them."""

    input_per_million: float = Field(default=0.0, ge=0)
    output_per_million: float = Field(default=0.0, ge=0)


class Budget(StrictModel):
    """Once a UTC day's probes have used this much, further probes that day are skipped."""

    daily_usd: float | None = Field(default=None, gt=0)
    daily_tokens: int | None = Field(default=None, gt=0)


class TLSConfig(StrictModel):
    """How to trust an https endpoint, named as in Prometheus's tls_config."""

    ca_file: Path | None = None
    insecure_skip_verify: bool = False

    @field_validator("ca_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None and not os.access(value, os.R_OK):
            raise ValueError("is not a readable file")
        return value


class LoadProbe(StrictModel):
    """A bounded burst of concurrent requests, to watch throughput under concurrency."""

    concurrency: int = Field(default=4, ge=1, le=256)
    requests: int = Field(default=16, ge=1, le=10_000)
    every: Duration = 600.0
    timeout: Duration = 120.0  # for the whole burst


DEFAULT_PROMPT = Prompt(
    name="default", text="Count from 1 to 20, separated by commas. Reply with the numbers only."
)


class Defaults(StrictModel):
    """Values every endpoint inherits unless it sets its own."""

    interval: Duration = 30.0
    timeout: Duration = 20.0
    max_tokens: int = Field(default=64, ge=1, le=1_000_000)
    stream: bool = True


class EndpointBase(StrictModel):
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
    api_key_file: Path | None = None
    prompts: list[Prompt] = Field(default_factory=lambda: [DEFAULT_PROMPT], min_length=1)
    tls_config: TLSConfig = Field(default_factory=TLSConfig)
    pricing: Pricing | None = None
    budget: Budget | None = None
    load: LoadProbe | None = None
    _api_key: ApiKey | None = PrivateAttr(default=None)

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

    @field_validator("api_key_file")
    @classmethod
    def _check_key_file(cls, value: Path | None) -> Path | None:
        if value is not None and not os.access(value, os.R_OK):
            raise ValueError("is not a readable file")
        return value

    @field_validator("api_key_env")
    @classmethod
    def _check_key_env(cls, value: str | None) -> str | None:
        if value is not None and not os.environ.get(value, "").strip():
            raise ValueError("names an environment variable that is not set or empty")
        return value

    @field_validator("prompts")
    @classmethod
    def _unique_prompts(cls, value: list[Prompt]) -> list[Prompt]:
        names = [p.name for p in value]
        if len(names) != len(set(names)):
            raise ValueError("prompt names must be unique within an endpoint")
        return value

    @model_validator(mode="after")
    def _bind_key(self) -> EndpointBase:
        if self.api_key_env and self.api_key_file:
            raise ValueError("set api_key_env or api_key_file, not both")
        if self.api_key_env or self.api_key_file:
            self._api_key = ApiKey(env=self.api_key_env, path=self.api_key_file)
        return self

    def api_key(self) -> SecretStr | None:
        """The current key, re-read from its file when the file changed."""
        return self._api_key.get() if self._api_key else None


class OpenAIEndpoint(EndpointBase):
    provider: Literal["openai"]
    api: Literal["chat", "completions"] = "chat"
    # Azure OpenAI: set the api-version; the key then goes in an `api-key` header and the
    # url is the deployment's, e.g. https://NAME.openai.azure.com/openai/deployments/DEPLOYMENT
    api_version: str | None = Field(default=None, pattern=r"^[0-9A-Za-z.-]{1,40}$")


class AnthropicEndpoint(EndpointBase):
    provider: Literal["anthropic"]
    anthropic_version: str = Field(default="2023-06-01", pattern=r"^[0-9A-Za-z.-]{1,40}$")


class OllamaEndpoint(EndpointBase):
    provider: Literal["ollama"]


class TGIEndpoint(EndpointBase):
    provider: Literal["tgi"]


Endpoint = Annotated[
    OpenAIEndpoint | AnthropicEndpoint | OllamaEndpoint | TGIEndpoint,
    Field(discriminator="provider"),
]


# --- samplers --------------------------------------------------------------------------


class NameFilter(StrictModel):
    """Which names to report: those matching `include` (all when unset) but not `exclude`."""

    include: Regex | None = None
    exclude: Regex | None = None

    def admits(self, name: str) -> bool:
        if self.include is not None and not re.search(self.include, name):
            return False
        return self.exclude is None or not re.search(self.exclude, name)


class HostSampler(StrictModel):
    enabled: bool = True
    interval: Duration = 5.0
    # Pseudo filesystems are skipped by type; these filter what is left by mount point.
    mountpoints: NameFilter = Field(
        default_factory=lambda: NameFilter(exclude=r"^/(proc|sys|dev|run)($|/)"))
    devices: NameFilter = Field(default_factory=lambda: NameFilter(exclude=r"^(loop|ram)\d*$"))
    interfaces: NameFilter = Field(default_factory=lambda: NameFilter(exclude=r"^lo$"))


def _auto_or_bool(value: object) -> Literal["auto"] | bool:
    words = {"auto": "auto", "true": True, "false": False, "on": True, "off": False}
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in words:
        return words[value.lower()]  # type: ignore[return-value]
    raise ValueError("must be auto, true or false")


class GPUSampler(StrictModel):
    # "auto": sample when NVML and a driver are present, stay quiet otherwise.
    enabled: Annotated[Literal["auto"] | bool, PlainValidator(_auto_or_bool)] = "auto"
    interval: Duration = 5.0


class ProcessTarget(StrictModel):
    """A process to watch, found by exactly one of: a command-line substring, a command-line
    regular expression, its process name, or a pid file."""

    name: Name
    cmdline: str | None = Field(default=None, min_length=1, max_length=1000)
    cmdline_regex: Regex | None = None
    process_name: str | None = Field(default=None, min_length=1, max_length=255)
    pidfile: Path | None = None

    @model_validator(mode="after")
    def _one_matcher(self) -> ProcessTarget:
        given = [self.cmdline, self.cmdline_regex, self.process_name, self.pidfile]
        if sum(v is not None for v in given) != 1:
            raise ValueError("give exactly one of cmdline, cmdline_regex, process_name, pidfile")
        return self


class ProcessSampler(StrictModel):
    enabled: bool = True
    interval: Duration = 5.0
    targets: list[ProcessTarget] = Field(default_factory=list)

    @field_validator("targets")
    @classmethod
    def _unique_targets(cls, value: list[ProcessTarget]) -> list[ProcessTarget]:
        names = [t.name for t in value]
        if len(names) != len(set(names)):
            raise ValueError("target names must be unique")
        return value


class Samplers(StrictModel):
    host: HostSampler = Field(default_factory=HostSampler)
    gpu: GPUSampler = Field(default_factory=GPUSampler)
    process: ProcessSampler = Field(default_factory=ProcessSampler)


# --- the whole file --------------------------------------------------------------------


def parse_listen(value: str) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` for IPv6) into its parts."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("must be HOST:PORT, for example 0.0.0.0:9977 or [::]:9977")
    return host.strip("[]") or "0.0.0.0", int(port)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    listen: str = "0.0.0.0:9977"
    web_config_file: Path | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    defaults: Defaults = Field(default_factory=Defaults)
    endpoints: list[Endpoint] = Field(default_factory=list)
    samplers: Samplers = Field(default_factory=Samplers)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file (which arrives as init kwargs).
        return (env_settings, init_settings)

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @model_validator(mode="before")
    @classmethod
    def _inherit_defaults(cls, data: Any) -> Any:
        """Copy ``defaults`` into every endpoint that does not set the key itself."""
        if not isinstance(data, dict) or not isinstance(data.get("endpoints"), list):
            return data
        try:
            defaults = Defaults.model_validate(data.get("defaults") or {}).model_dump()
        except ValidationError:
            return data  # reported once, under `defaults`
        data = dict(data)
        data["endpoints"] = [
            {**defaults, **ep} if isinstance(ep, dict) else ep for ep in data["endpoints"]
        ]
        return data

    @field_validator("endpoints")
    @classmethod
    def _unique_endpoints(cls, value: list[EndpointBase]) -> list[EndpointBase]:
        names = [e.name for e in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError("endpoint names must be unique: " + ", ".join(duplicates))
        return value

    def dump(self) -> dict[str, Any]:
        """The effective config as plain data. Keys are never part of it: only where they
        come from (``api_key_env`` / ``api_key_file``) is shown."""
        return self.model_dump(mode="json", by_alias=True)


# --- loading ---------------------------------------------------------------------------


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif i > 0 and isinstance(loc[i - 1], int) and part in PROVIDERS and loc[0] == "endpoints":
            continue  # the discriminated union's tag, not a key the user wrote
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


_MESSAGES = {
    "extra_forbidden": "unknown key",
    "union_tag_invalid": "must be one of " + ", ".join(PROVIDERS),
    "union_tag_not_found": "is required (one of " + ", ".join(PROVIDERS) + ")",
    "missing": "is required",
}


def describe_errors(error: ValidationError) -> list[str]:
    """One ``path: reason`` line per problem, built without the offending input."""
    lines = []
    for err in error.errors(include_input=False, include_url=False, include_context=False):
        message = _MESSAGES.get(err["type"], err["msg"]).removeprefix("Value error, ")
        path = _loc(err["loc"])
        if err["type"].startswith("union_tag"):
            path += ".provider"
        lines.append(f"{path}: {message}")
    return lines


def read_yaml(path: Path) -> dict[str, Any]:
    """The mapping in a YAML file. Parse errors give the position, never the line's text."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read ({type(exc).__name__})"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else "somewhere"
        raise ConfigError([f"{path}: invalid YAML at {where}: {exc.problem}"]) from None
    except yaml.YAMLError:
        raise ConfigError([f"{path}: invalid YAML"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: the top level must be a mapping of keys"])
    return data


def _unknown_env(data: dict[str, Any]) -> list[str]:
    """``LLMMON_*`` variables that match no setting: a typo there would be silently ignored."""
    endpoints = data.get("endpoints")
    referenced = {ep.get("api_key_env") for ep in endpoints if isinstance(ep, dict)} \
        if isinstance(endpoints, list) else set()
    problems = []
    for var in sorted(os.environ):
        if not var.startswith(ENV_PREFIX) or var == CONFIG_PATH_ENV or var in referenced:
            continue
        key = var[len(ENV_PREFIX) :].split("__", 1)[0].lower()
        if key not in Settings.model_fields:
            problems.append(f"environment variable {var}: matches no setting")
    return problems


def load_settings(path: Path | None) -> Settings:
    """Settings from ``path`` (``None``: built-in defaults) plus the environment.

    Raises ``ConfigError`` listing every problem found.
    """
    data = read_yaml(path) if path is not None else {}
    problems = _unknown_env(data)
    try:
        settings = Settings(**{str(k): v for k, v in data.items()})
    except ValidationError as exc:
        problems += describe_errors(exc)
        settings = None
    if problems or settings is None:
        raise ConfigError(problems)
    return settings


def default_config_path() -> Path | None:
    """``$LLMMON_CONFIG``, else /etc/llmmon/config.yaml when it exists, else no file."""
    if env := os.environ.get(CONFIG_PATH_ENV):
        return Path(env)
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None
