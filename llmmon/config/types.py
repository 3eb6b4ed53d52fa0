"""Building blocks of the configuration: errors, durations, names, readable files, name
filters, regexes (RE2), strict models, what may be a key in a message. Nothing here knows of
providers or samplers."""

from __future__ import annotations

import datetime
import math
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

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

from llmmon.config.files import (
    CONFIG_FILE_LIMIT,
    SECRET_FILE_LIMIT,
    FileProblem,
    check_regular,
    load_yaml,
    read_regular,
)
from llmmon.config.regex import Regex as Regex
from llmmon.config.regex import regex_search


class ConfigError(Exception):
    """A configuration that cannot be used; ``problems`` holds one line per bad field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def read_yaml(path: Path) -> dict[str, Any]:
    """The mapping in a YAML file: a regular file of at most 4 MiB, nested at most 64 deep,
    without alias bombs (``files.py``). Every failure is a ``ConfigError`` naming the file;
    parse errors give the position, never the line's text."""
    try:
        data = load_yaml(read_regular(path, CONFIG_FILE_LIMIT))
    except FileProblem as exc:
        raise ConfigError([str(exc)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else "somewhere"
        problem = mask_secrets(exc.problem or "")
        raise ConfigError([f"{path}: invalid YAML at {where}: {problem}"]) from None
    except Exception as exc:  # YAMLError, a 5000-digit integer's ValueError, anything
        raise ConfigError([f"{path}: invalid YAML ({type(exc).__name__})"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: the top level must be a mapping of keys"])
    return {str(k): v for k, v in data.items()}


# --- what may be a key pasted in the wrong place ---------------------------------------

_KEY_PREFIXES = ("sk-", "sk_", "hf_", "ghp_", "gho_", "ghs_", "ghu_", "github_pat_", "glpat-",
                 "xoxb-", "xoxp-", "AKIA", "AIza", "gsk_", "pplx-", "nvapi-", "r8_", "eyJ")
_TOKEN = re.compile(r"[\w+/=.~-]{12,}")


def looks_secret(text: str) -> bool:
    """Whether a word shown in a message (a key the file has, a YAML token) may be an API
    key pasted in the wrong place: a known key prefix, more than 40 characters, or 20 and
    more of letters and digits mixed with high entropy. Config keys are short words."""
    if len(text) > 40 or (len(text) >= 12 and text.startswith(_KEY_PREFIXES)):
        return True
    if len(text) < 20 or not (any(c.isdigit() for c in text) and any(c.isalpha() for c in text)):
        return False
    counts = [text.count(c) for c in set(text)]
    entropy = -sum(n / len(text) * math.log2(n / len(text)) for n in counts)
    return entropy >= 3.5


def shown(text: str) -> str:
    """``text`` as a message may show it: its first 6 characters if it looks like a key."""
    return text[:6] + "…" if looks_secret(text) else text


def mask_secrets(message: str) -> str:
    """``message`` with every word that looks like a key cut to its first 6 characters."""
    return _TOKEN.sub(lambda m: shown(m.group()), message)


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


def parse_grace(value: object) -> float:
    """A duration that may be zero (0 or "0s" turns the thing it bounds off)."""
    if value in (0, "0", "0s") and not isinstance(value, bool):
        return 0.0
    return parse_duration(value)


# A duration where 0 means "off" (a start-up grace).
GraceDuration = Annotated[
    float,
    BeforeValidator(parse_grace),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]

_RATIO_HELP = "must be a share such as 99.5% or 0.995, above 0 and below 1"


def parse_ratio(value: object) -> float:
    """An objective's target: "99.5%" or 0.995; strictly between 0 and 1, since 100% leaves
    no error budget to burn and 0% needs no alert."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            ratio = float(value.strip()[:-1]) / 100
        except ValueError:
            raise ValueError(_RATIO_HELP) from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        ratio = float(value)
    else:
        raise ValueError(_RATIO_HELP)
    if not (math.isfinite(ratio) and 0 < ratio < 1):
        raise ValueError(_RATIO_HELP)
    return ratio


Ratio = Annotated[float, BeforeValidator(parse_ratio)]


def parse_listen(value: str) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` for IPv6) into its parts."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("must be HOST:PORT, for example 0.0.0.0:9977 or [::]:9977")
    return host.strip("[]") or "0.0.0.0", int(port)


# Endpoint and prompt names become label values: keep them short and printable.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]


def _date_as_text(value: object) -> object:
    # YAML reads an unquoted 2024-10-21 as a date; an API version is that date's text.
    return value.isoformat() if isinstance(value, datetime.date) else value


ApiVersion = Annotated[str, BeforeValidator(_date_as_text),
                       Field(pattern=r"^[0-9A-Za-z.-]{1,40}$")]


def is_offline(info: ValidationInfo) -> bool:
    """Whether this validation runs offline (``check-config --offline``, ``healthcheck``):
    pass ``context={"offline": True}``. Offline, secrets and files a path names need not
    exist yet; what is written must still be well formed."""
    return isinstance(info.context, dict) and bool(info.context.get("offline"))


def _path_form(value: Path) -> None:
    if value == Path() or "\0" in str(value):
        raise ValueError("is not a file path")


def _readable(value: Path, info: ValidationInfo) -> Path:
    _path_form(value)
    if not is_offline(info):
        try:
            check_regular(value, READABLE_FILE_LIMIT)
        except FileProblem as exc:
            _refuse(exc)
        if not os.access(value, os.R_OK):
            raise ValueError("is not a readable file")
    return value


def _secret_file(value: Path, info: ValidationInfo) -> Path:
    _path_form(value)
    if not is_offline(info):
        try:
            read_regular(value, SECRET_FILE_LIMIT)  # read, never kept: what a probe will do
        except FileProblem as exc:
            _refuse(exc)
    return value


def _refuse(exc: FileProblem) -> NoReturn:
    # Missing, unreadable and directories keep the message they always had.
    plain = exc.reason in ("file not found", "permission denied", "is a directory")
    raise ValueError("is not a readable file" if plain else exc.reason) from None


# A path the daemon will read (a CA bundle): checked when the config is loaded, so a typo is
# a rejected config and not a failing probe an hour later (offline: only its form). A FIFO
# or a device is refused: reading one would block or never end.
READABLE_FILE_LIMIT = 16 << 20
ReadableFile = Annotated[Path, AfterValidator(_readable)]
# A key file (api_key_file, a header's file): read once at load too, so that one that is not
# a regular file, is larger than 64 KiB or is not UTF-8 is a rejected config.
SecretFile = Annotated[Path, AfterValidator(_secret_file)]

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
    model_config = ConfigDict(extra="forbid", frozen=False, defer_build=True)


class NameFilter(StrictModel):
    """Which names to report: those matching `include` (all when unset) but not `exclude`."""

    include: Regex | None = None
    exclude: Regex | None = None

    def admits(self, name: str) -> bool:
        if self.include is not None and not regex_search(self.include, name):
            return False
        return self.exclude is None or not regex_search(self.exclude, name)
