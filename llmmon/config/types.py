"""Building blocks of the configuration: errors, durations, names, strict models."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
)

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
