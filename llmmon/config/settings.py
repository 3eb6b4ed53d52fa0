"""The whole configuration: a YAML file plus ``LLMMON_*`` environment overrides, validated
strictly. ``endpoints`` take every registered provider's config, ``samplers`` every
registered sampler's.

Validation errors name the path of the bad field and the reason, never the input value:
pydantic echoes inputs in its messages, and an input may be a secret.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import Field, ValidationError, create_model, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from llmmon.config import ConfigError, Defaults, StrictModel, unique_names
from llmmon.providers import PROVIDERS, Endpoint
from llmmon.samplers import SAMPLERS

if TYPE_CHECKING:
    class SamplersConfig(StrictModel):
        """One section per registered sampler, named as in ``SAMPLERS``."""

        def __getattr__(self, name: str) -> Any: ...
else:
    SamplersConfig = create_model(
        "SamplersConfig", __base__=StrictModel,
        **{name: (kind.config, Field(default_factory=kind.config))
           for name, kind in SAMPLERS.items()},
    )

ENV_PREFIX = "LLMMON_"
# Read by the CLI, not a setting: it names the file the settings come from.
CONFIG_PATH_ENV = "LLMMON_CONFIG"
DEFAULT_CONFIG_PATH = Path("/etc/llmmon/config.yaml")


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
    samplers: SamplersConfig = Field(default_factory=SamplersConfig)

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

    _unique_endpoints = field_validator("endpoints")(unique_names("endpoint"))

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
