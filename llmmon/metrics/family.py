"""What a metric family is: a name, a kind, a help text and its labels. Declared once, by
the module that owns the values (``metrics/families.py`` for probes and llmmon itself, each
sampler module for its readings)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True)
class Family:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    group: str = "self"


Reading = tuple[Family, tuple[str, ...], float]
"""One sampled value: its family, its label values (in the family's label order), the value."""
