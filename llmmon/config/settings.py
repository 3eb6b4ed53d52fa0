"""The whole configuration: a YAML file plus ``LLMMON_*`` environment overrides, validated
strictly. ``endpoints`` take every registered provider's config, ``samplers`` every
registered sampler's.

Validation errors name the path of the bad field and the reason, never the input value:
pydantic echoes inputs in its messages, and an input may be a secret.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from llmmon.config import ConfigError, Defaults, StrictModel, unique_names
from llmmon.config.environment import (
    CONFIG_PATH_ENV,
    ENV_PREFIX,
    endpoints_of,
    merge,
    read_environment,
    unknown_variables,
)
from llmmon.config.evals import EvalSuite, unique_suites
from llmmon.config.types import NAME_PATTERN, looks_secret, shown
from llmmon.config.types import parse_listen as parse_listen  # where cli.py takes it from
from llmmon.config.types import read_yaml as read_yaml  # where daemon/auth.py takes it from
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

DEFAULT_CONFIG_PATH = Path("/etc/llmmon/config.yaml")


# --- the whole file --------------------------------------------------------------------


class SettingsData(StrictModel):
    """The whole file's keys and checks, as a plain model, so that it can be validated with
    a context (``{"offline": True}``): pydantic-settings' ``__init__`` would drop it."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    listen: str = "0.0.0.0:9977"
    web_config_file: Path | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Probes kept per endpoint for /probes?endpoint=NAME (each a summary of about 1 KiB).
    probe_history: int = Field(default=20, ge=0, le=1000)
    defaults: Defaults = Field(default_factory=Defaults)
    endpoints: list[Endpoint] = Field(default_factory=list)
    samplers: SamplersConfig = Field(default_factory=SamplersConfig)
    evals: list[EvalSuite] = Field(default_factory=list, max_length=100)

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
            _inherit(defaults, ep) if isinstance(ep, dict) else ep for ep in data["endpoints"]
        ]
        return data

    _unique_endpoints = field_validator("endpoints")(unique_names("endpoint"))
    _unique_suites = field_validator("evals")(unique_suites)

    @model_validator(mode="after")
    def _suite_endpoints(self) -> SettingsData:
        known = {e.name for e in self.endpoints}
        for suite in self.evals:
            missing = [n for n in suite.endpoints if n not in known]
            if missing:
                raise ValueError(f"evals ({suite.name}): no endpoint named "
                                 + ", ".join(missing))
        return self

    def dump(self) -> dict[str, Any]:
        """The effective config as plain data. Keys are never part of it: only where they
        come from (``api_key_env`` / ``api_key_file``) is shown."""
        return self.model_dump(mode="json", by_alias=True)


class Settings(SettingsData, BaseSettings):
    """``SettingsData`` plus ``LLMMON_*`` overrides: ``Settings(**file)`` reads the
    environment itself; ``check_settings`` builds one from a ``SettingsData``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", validate_default=True
    )

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


def _inherit(defaults: dict[str, Any], endpoint: dict[str, Any]) -> dict[str, Any]:
    """``endpoint`` over ``defaults``; a section both set (``slo``) merged key by key, so an
    endpoint's ``slo: {ttft: 5s}`` keeps the default's other objectives."""
    out = {**defaults, **endpoint}
    for key, value in defaults.items():
        if isinstance(value, dict) and isinstance(endpoint.get(key), dict):
            out[key] = {**value, **endpoint[key]}
    return out


# --- loading ---------------------------------------------------------------------------

# A union member's schema in an error's location (``function-after[_one(), HeaderSecret]``).
_MEMBER = re.compile(r"[a-z-]+\[.*\]")
_NAME = re.compile(NAME_PATTERN)


def _named(item: Any) -> str:
    """`` (name)`` for a list item that has a well-formed name, so a path reads
    ``endpoints[4] (openai-prod)``; a name that is not well formed is never repeated."""
    name = item.get("name") if isinstance(item, dict) else None
    plain = isinstance(name, str) and _NAME.fullmatch(name) and not looks_secret(name)
    return f" ({name})" if plain else ""


def _loc(loc: tuple[int | str, ...], data: Any = None) -> tuple[str, str | None]:
    """The user's path to an error (list items by name where the raw ``data`` has one), and
    the path of the union it went through, if any."""
    out, node, union = "", data, None
    for i, part in enumerate(loc):
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            out += f"[{part}]{_named(node)}"
        elif i > 0 and isinstance(loc[i - 1], int) and part in PROVIDERS and loc[0] == "endpoints":
            continue  # the discriminated union's tag, not a key the user wrote
        elif _MEMBER.fullmatch(part):
            union = out
        else:
            node = node.get(part) if isinstance(node, dict) else None
            out += f".{shown(part)}" if out else shown(part)  # a key pasted as a YAML key
    return out or "(top level)", union


_MESSAGES = {
    "extra_forbidden": "unknown key",
    "union_tag_invalid": "must be one of " + ", ".join(PROVIDERS),
    "union_tag_not_found": "is required (one of " + ", ".join(PROVIDERS) + ")",
    "missing": "is required",
}


def describe_errors(error: ValidationError, data: Any = None) -> list[str]:
    """One ``path: reason`` line per problem, built without the offending input (its type
    is looked at, never printed). ``data``, what was validated, names list items."""
    found = []
    for err in error.errors(include_url=False, include_context=False):
        message = _MESSAGES.get(err["type"], err["msg"]).removeprefix("Value error, ")
        if err["type"] == "string_type" and isinstance(err.get("input"), datetime.date):
            message = "YAML read this as a date; quote it"
        path, union = _loc(err["loc"], data)
        if err["type"].startswith("union_tag"):
            path += ".provider"
        found.append((path, message, union, err["type"].endswith("_type")))
    # Where one member of a union (a header: text, or {env|file}) has a real problem, the
    # others' "should be a valid string" is noise.
    real = {union for _, _, union, mismatch in found if union is not None and not mismatch}
    return list(dict.fromkeys(f"{path}: {message}" for path, message, union, mismatch in found
                              if not (mismatch and union in real)))


def _duplicate_names(data: dict[str, Any]) -> list[str]:
    """Endpoint names used twice, from the raw data: the check on the validated list does
    not run when any endpoint is invalid."""
    names = [n for ep in endpoints_of(data) if isinstance(n := ep.get("name"), str)
             and _NAME.fullmatch(n)]
    twice = sorted({n for n in names if names.count(n) > 1})
    return ["endpoints: endpoint names must be unique: " + ", ".join(twice)] if twice else []


Checked = tuple[Settings | None, list[str], dict[str, Any]]


def check_settings(path: Path | None, *, offline: bool = False,
                   only: Collection[str] | None = None) -> Checked:
    """Every problem of ``path`` (``None``: built-in defaults) plus the environment, in one
    pass; the settings if there is none; the data validated. ``offline``: keys and files need
    not exist. ``only``: validate just these settings (``healthcheck``: ``listen`` and
    ``web_config_file``)."""
    try:
        return _check(path, offline, only)
    except Exception as exc:  # whatever the input: a rejected config, never a traceback
        return None, [f"{path or 'configuration'}: cannot be loaded ({type(exc).__name__})"], {}


def _check(path: Path | None, offline: bool, only: Collection[str] | None) -> Checked:
    problems: list[str] = []
    try:
        data = read_yaml(path) if path is not None else {}
    except ConfigError as exc:  # the environment can still be checked
        problems += exc.problems
        data = {}
    env, env_problems = read_environment(Settings)
    values = merge(data, env)
    if only is not None:
        values = {key: value for key, value in values.items() if key in only}
    else:
        problems += unknown_variables(data, Settings.model_fields) + env_problems
    try:
        checked = SettingsData.model_validate(values, context={"offline": offline})
        settings: Settings | None = Settings.model_construct(checked.model_fields_set,
                                                             **dict(checked))
    except ValidationError as exc:
        problems += describe_errors(exc, values) + _duplicate_names(values)
        settings = None
    problems = list(dict.fromkeys(problems))
    return (None if problems else settings), problems, values


def load_settings(path: Path | None, *, offline: bool = False,
                  only: Collection[str] | None = None) -> Settings:
    """Settings from ``path`` (``None``: built-in defaults) plus the environment; raises
    ``ConfigError`` listing every problem found."""
    settings, problems, _ = check_settings(path, offline=offline, only=only)
    if settings is None:
        raise ConfigError(problems)
    return settings


def default_config_path() -> Path | None:
    """``$LLMMON_CONFIG``, else /etc/llmmon/config.yaml when it exists, else no file."""
    if env := os.environ.get(CONFIG_PATH_ENV):
        return Path(env)
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None
