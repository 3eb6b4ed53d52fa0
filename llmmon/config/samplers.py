"""What the samplers are configured with."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    PlainValidator,
    field_validator,
    model_validator,
)

from llmmon.config.types import Duration, Name, Regex, StrictModel

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
