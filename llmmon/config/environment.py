"""The ``LLMMON_*`` environment variables: read as pydantic-settings reads them, with what
it cannot parse (or should not: JSON nested too deep) reported by name, and those that match
no setting reported too."""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from typing import Any

from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsError

from llmmon.config.files import MAX_DEPTH, json_depth

ENV_PREFIX = "LLMMON_"
# Read by the CLI, not a setting: it names the file the settings come from.
CONFIG_PATH_ENV = "LLMMON_CONFIG"


# What Kubernetes injects into every container for each Service in the namespace (unless
# the Pod sets enableServiceLinks: false): for a Service named `llmmon` (or `llmmon-web`),
# LLMMON_SERVICE_HOST=10.0.0.1, LLMMON_SERVICE_PORT=9977, LLMMON_SERVICE_PORT_METRICS=9977,
# LLMMON_PORT=tcp://10.0.0.1:9977, LLMMON_PORT_9977_TCP=tcp://..., LLMMON_PORT_9977_TCP_PROTO=
# tcp, ..._PORT=9977, ..._ADDR=10.0.0.1. Recognised by name and value, so a typo of a real
# setting is still reported.
_SERVICE = r"LLMMON_(?:[A-Z0-9_]+_)?"
_ADDRESS = r"[0-9a-fA-F.:]+"
SERVICE_LINKS = (
    (re.compile(_SERVICE + r"SERVICE_HOST"), re.compile(_ADDRESS)),
    (re.compile(_SERVICE + r"SERVICE_PORT(?:_[A-Z0-9_]+)?"), re.compile(r"\d{1,5}")),
    (re.compile(_SERVICE + r"PORT"), re.compile(r"(?:tcp|udp|sctp)://\[?" + _ADDRESS
                                                + r"\]?:\d{1,5}")),
    (re.compile(_SERVICE + r"PORT_\d{1,5}_(?:TCP|UDP|SCTP)"),
     re.compile(r"(?:tcp|udp|sctp)://\[?" + _ADDRESS + r"\]?:\d{1,5}")),
    (re.compile(_SERVICE + r"PORT_\d{1,5}_(?:TCP|UDP|SCTP)_PROTO"), re.compile(r"tcp|udp|sctp")),
    (re.compile(_SERVICE + r"PORT_\d{1,5}_(?:TCP|UDP|SCTP)_PORT"), re.compile(r"\d{1,5}")),
    (re.compile(_SERVICE + r"PORT_\d{1,5}_(?:TCP|UDP|SCTP)_ADDR"), re.compile(_ADDRESS)),
)


def is_service_link(name: str, value: str) -> bool:
    """Whether ``name=value`` is one of Kubernetes' service-link variables."""
    return any(n.fullmatch(name) and v.fullmatch(value) for n, v in SERVICE_LINKS)


def endpoints_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The endpoints of raw config data that are mappings."""
    endpoints = data.get("endpoints")
    return [ep for ep in endpoints if isinstance(ep, dict)] if isinstance(endpoints, list) else []


def unknown_variables(data: dict[str, Any], settings: Collection[str]) -> list[str]:
    """``LLMMON_*`` variables that match no setting: a typo there would be silently ignored."""
    referenced = {ep.get("api_key_env") for ep in endpoints_of(data)}
    for ep in endpoints_of(data):
        if isinstance(headers := ep.get("headers"), dict):
            referenced |= {h.get("env") for h in headers.values() if isinstance(h, dict)}
    problems = []
    for var in sorted(os.environ):
        if not var.startswith(ENV_PREFIX) or var == CONFIG_PATH_ENV or var in referenced:
            continue
        if is_service_link(var, os.environ[var]):
            continue
        key = var[len(ENV_PREFIX) :].split("__", 1)[0].lower()
        if key not in settings:
            problems.append(f"environment variable {var}: matches no setting")
    return problems


def read_environment(settings: type[BaseSettings]) -> tuple[dict[str, Any], list[str]]:
    """The ``LLMMON_*`` overrides of ``settings`` as pydantic-settings reads them. A variable
    it cannot parse (a list or a section that is not JSON, or JSON nested deeper than
    ``MAX_DEPTH``, which its ``json.loads`` would recurse into) is reported and left out; the
    others still count."""
    source = EnvSettingsSource(settings)
    every, spelt = dict(source.env_vars), {var.lower(): var for var in os.environ}
    problems = []
    for var in [v for v in every if v.startswith(ENV_PREFIX.lower())]:
        if json_depth(every[var] or "") > MAX_DEPTH:
            problems.append(f"environment variable {spelt.get(var, var.upper())}: nested "
                            f"deeper than {MAX_DEPTH} levels")
            del every[var]
            continue
        source.env_vars = {var: every[var]}
        try:
            source()
        except SettingsError:
            problems.append(f"environment variable {spelt.get(var, var.upper())}: cannot be "
                            "parsed (lists and sections are written as JSON)")
            del every[var]
    source.env_vars = every
    return source(), problems


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` on top, sections merged key by key."""
    out = dict(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merge(out[key], value) if both else value
    return out
