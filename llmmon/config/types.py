"""Building blocks of the configuration: errors, durations, names, readable files, name
filters, strict models. Nothing here knows of providers or samplers."""

from __future__ import annotations

import datetime
import math
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
)


class ConfigError(Exception):
    """A configuration that cannot be used; ``problems`` holds one line per bad field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


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
    return {str(k): v for k, v in data.items()}


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
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]


def _date_as_text(value: object) -> object:
    # YAML reads an unquoted 2024-10-21 as a date; an API version is that date's text.
    return value.isoformat() if isinstance(value, datetime.date) else value


ApiVersion = Annotated[str, BeforeValidator(_date_as_text),
                       Field(pattern=r"^[0-9A-Za-z.-]{1,40}$")]


def _compiles(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"is not a valid regular expression ({exc.msg})") from None
    return value


Regex = Annotated[str, AfterValidator(_compiles)]


def is_offline(info: ValidationInfo) -> bool:
    """Whether this validation runs offline (``check-config --offline``, ``healthcheck``):
    pass ``context={"offline": True}``. Offline, secrets and files a path names need not
    exist yet; what is written must still be well formed."""
    return isinstance(info.context, dict) and bool(info.context.get("offline"))


def _readable(value: Path, info: ValidationInfo) -> Path:
    if value == Path() or "\0" in str(value):
        raise ValueError("is not a file path")
    if not is_offline(info) and (value.is_dir() or not os.access(value, os.R_OK)):
        raise ValueError("is not a readable file")
    return value


# A path the daemon will read (a key, a CA bundle): checked when the config is loaded, so a
# typo is a rejected config and not a failing probe an hour later (offline: only its form).
ReadableFile = Annotated[Path, AfterValidator(_readable)]

T = TypeVar("T")


def unique_names(what: str) -> Callable[[Sequence[T]], Sequence[T]]:
    """A validator for a list whose items' names become label values: each at most once."""

    def check(items: Sequence[T]) -> Sequence[T]:
        names = [getattr(item, "name", None) for item in items]
        duplicates = sorted({str(n) for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"{what} names must be unique: " + ", ".join(duplicates))
        return items

    return check


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class NameFilter(StrictModel):
    """Which names to report: those matching `include` (all when unset) but not `exclude`."""

    include: Regex | None = None
    exclude: Regex | None = None

    def admits(self, name: str) -> bool:
        if self.include is not None and not re.search(self.include, name):
            return False
        return self.exclude is None or not re.search(self.exclude, name)
