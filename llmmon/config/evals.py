"""Evaluation suites: items (an input and a reference or an expectation, and a scorer) run
against chosen endpoints on their own slow schedule. A suite's items come from a JSONL or
CSV file, a list in the config, or one of the suites llmmon ships (``builtin``).

Items are read and checked when the config is loaded, so a bad line is a rejected config
naming the line and the reason, never a failing eval an hour later.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from llmmon.config.files import FileProblem, json_depth, read_regular
from llmmon.config.prompts import Expect
from llmmon.config.regex import _compiles
from llmmon.config.types import (
    Duration,
    Name,
    Ratio,
    ReadableFile,
    StrictModel,
    is_offline,
    unique_names,
)

Scorer = Literal["exact", "contains", "regex", "number", "json", "f1", "rouge_l", "bleu",
                 "perplexity"]
SCORERS: tuple[str, ...] = (*get_args(Scorer), "expect")  # `expect`: an item's own check
BUILTIN_DIR = Path(__file__).resolve().parent.parent / "evals" / "suites"
BUILTIN_SUITES = ("sanity", "reading")
SUITE_FILE_LIMIT = 16 << 20
MAX_ITEMS = 100_000
CSV_COLUMNS = ("id", "input", "reference", "scorer", "tolerance")


_NEEDS_INPUT = "input is required (but for the perplexity scorer)"


class EvalItem(StrictModel):
    """One question. ``reference`` is what the answer is scored against (several: the best
    match counts, as SQuAD scores); for ``perplexity`` it is the text whose perplexity the
    model is asked for. ``expect`` instead: the probe's own checks, scored 1 or 0."""

    id: str | None = Field(default=None, max_length=200)
    input: str | None = Field(default=None, min_length=1, max_length=100_000)
    reference: str | list[str] | None = None
    expect: Expect | None = None
    scorer: Scorer | None = None  # the suite's when unset
    tolerance: float = Field(default=0.0, ge=0)  # `number`: how far off still passes
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")  # `json`
    max_tokens: int | None = Field(default=None, ge=1, le=100_000)

    @field_validator("reference")
    @classmethod
    def _references(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and not value:
            raise ValueError("give at least one reference")
        return value

    @field_validator("schema_")
    @classmethod
    def _schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            check_schema(value)
        return value

    @model_validator(mode="after")
    def _complete(self) -> EvalItem:
        if self.expect is not None and self.reference is not None:
            raise ValueError("give reference or expect, not both")
        if (self.expect is None and self.reference is None and self.schema_ is None
                and self.scorer != "json"):
            raise ValueError("give reference (with a scorer) or expect")
        # Without a scorer of its own, the suite's decides (check_scorer).
        if self.input is None and (self.expect is not None
                                   or self.scorer not in (None, "perplexity")):
            raise ValueError(_NEEDS_INPUT)
        if self.expect is not None and self.scorer is not None:
            raise ValueError("an item with expect is scored by its checks: drop scorer")
        if self.scorer is not None:
            self.check_scorer(self.scorer)
        return self

    def check_scorer(self, scorer: str) -> None:
        """ValueError unless ``scorer`` can score this item: a regex reference RE2 runs, a
        number reference a finite number, a json reference JSON, a schema only for json."""
        if self.expect is not None:
            return
        if self.schema_ is not None and scorer != "json":
            raise ValueError(f"schema is for the json scorer, not {scorer}")
        if self.reference is None and scorer != "json":
            raise ValueError(f"give reference (the {scorer} scorer needs one) or expect")
        if self.input is None and scorer != "perplexity":
            raise ValueError(_NEEDS_INPUT)
        if scorer == "perplexity" and len(self.references()) != 1:
            raise ValueError("give one reference, the text (the perplexity scorer)")
        for ref in self.references():
            _check_reference(scorer, ref)

    def scorer_for(self, default: str) -> str:
        if self.expect is not None:
            return "expect"
        return self.scorer or default

    def references(self) -> list[str]:
        ref = self.reference
        return [ref] if isinstance(ref, str) else list(ref or [])


class EvalSuite(StrictModel):
    name: Name
    builtin: Literal["sanity", "reading"] | None = None
    file: ReadableFile | None = None
    items: list[EvalItem] | None = Field(default=None, min_length=1, max_length=MAX_ITEMS)
    endpoints: list[Name] = Field(default_factory=list)  # none named: every endpoint
    every: Duration = 3600.0
    sample: int = Field(default=20, ge=1, le=MAX_ITEMS)  # items per run, rotating
    concurrency: int = Field(default=1, ge=1, le=16)
    scorer: Scorer = "exact"  # for items that name none
    pass_score: Ratio = 0.5  # a graded item (f1, rouge_l, bleu) passes at or above this
    max_tokens: int = Field(default=64, ge=1, le=100_000)
    tokens_per_run: int | None = Field(default=None, gt=0)  # stop sending once spent
    timeout: Duration = 600.0  # for the whole run

    @model_validator(mode="after")
    def _source(self, info: ValidationInfo) -> EvalSuite:
        given = [k for k in ("builtin", "file", "items") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of builtin, file, items")
        if self.builtin is not None:
            self.items = read_suite(BUILTIN_DIR / f"{self.builtin}.jsonl", self.scorer)
        elif self.file is not None and not is_offline(info):
            self.items = read_suite(self.file, self.scorer)
        elif self.items is not None:
            for number, item in enumerate(self.items):
                if item.scorer is None:
                    try:
                        item.check_scorer(self.scorer)
                    except ValueError as exc:
                        raise ValueError(f"items[{number}]: {exc}") from None
        return self

    def loaded_items(self) -> list[EvalItem]:
        return self.items or []

    def covers(self, endpoint: str) -> bool:
        return not self.endpoints or endpoint in self.endpoints


unique_suites = unique_names("suite")


def read_suite(path: Path, scorer: str | None = None) -> list[EvalItem]:
    """A suite file's items: JSON Lines (one object a line) or CSV with a header row
    (``input,reference,scorer,tolerance,id``). Raises ValueError naming the line. With
    ``scorer`` (the suite's), items that name none are checked for it too."""
    try:
        text = read_regular(path, SUITE_FILE_LIMIT)
    except FileProblem as exc:
        raise ValueError(f"{path.name}: {exc.reason}") from None
    rows = _csv_rows(text) if path.suffix.lower() == ".csv" else _jsonl_rows(text)
    items = []
    for line, row in rows:
        try:
            item = EvalItem.model_validate(row)
            if scorer is not None and item.scorer is None:
                item.check_scorer(scorer)
        except ValidationError as exc:
            raise ValueError(f"{path.name} line {line}: {_first(exc)}") from None
        except ValueError as exc:
            raise ValueError(f"{path.name} line {line}: {exc}") from None
        items.append(item)
    if not items:
        raise ValueError(f"{path.name}: no items")
    if len(items) > MAX_ITEMS:
        raise ValueError(f"{path.name}: more than {MAX_ITEMS} items")
    return items


def _jsonl_rows(text: str) -> list[tuple[int, Any]]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if json_depth(line) > 32:
            raise ValueError(f"line {number}: nested too deeply")
        try:
            rows.append((number, json.loads(line)))
        except ValueError:
            raise ValueError(f"line {number}: not a JSON object") from None
    return rows


def _csv_rows(text: str) -> list[tuple[int, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    unknown = set(reader.fieldnames or ()) - set(CSV_COLUMNS)
    if unknown:
        raise ValueError(f"unknown CSV columns: {', '.join(sorted(unknown))[:200]} "
                         f"(known: {', '.join(CSV_COLUMNS)})")
    rows = []
    for row in reader:
        item = {k: v for k, v in row.items() if k and v not in (None, "")}
        if "tolerance" in item:
            item["tolerance"] = _float(item["tolerance"], reader.line_num)
        rows.append((reader.line_num, item))
    return rows


def _float(text: str, line: int) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"line {line}: tolerance is not a number") from None


def _first(exc: ValidationError) -> str:
    """The first problem of an item, by field and reason, without the input's value."""
    err = exc.errors(include_url=False, include_context=False)[0]
    where = ".".join(str(p) for p in err["loc"])
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _check_reference(scorer: str, ref: str) -> None:
    if scorer == "regex":
        try:
            _compiles(ref)
        except ValueError as exc:
            raise ValueError(f"reference {exc}") from None
    elif scorer == "number":
        try:
            number = float(ref)
        except ValueError:
            raise ValueError("reference is not a number (the number scorer)") from None
        if not math.isfinite(number):
            raise ValueError("reference is not a finite number (the number scorer)")
    elif scorer == "json":
        try:
            json.loads(ref, parse_constant=_not_json)
        except (ValueError, RecursionError):
            raise ValueError("reference is not JSON (the json scorer)") from None


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def check_schema(schema: dict[str, Any]) -> None:
    """ValueError unless ``schema`` is a JSON Schema (2020-12) that llmmon runs safely: its
    ``pattern``s RE2 can run (the json scorer matches them with RE2, in linear time), no
    ``patternProperties`` (jsonschema matches those with Python's backtracking re) and no
    reference outside the schema (nothing is fetched)."""
    from jsonschema import Draft202012Validator  # only for suites with a schema: 2.8 MiB
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        raise ValueError(f"schema is not a valid JSON Schema (2020-12): "
                         f"{exc.message[:200]}" + (f" at {where}" if where else "")) from None
    for key, value in _keywords(schema):
        if key == "patternProperties":
            raise ValueError("schema: patternProperties is not supported (it would run on "
                             "Python's backtracking re); use propertyNames with pattern")
        if key == "pattern" and isinstance(value, str):
            try:
                _compiles(value)
            except ValueError as exc:
                raise ValueError(f"schema pattern {exc}") from None
        if key in ("$ref", "$dynamicRef") and not str(value).startswith("#"):
            raise ValueError(f"schema: {key} {str(value)[:100]!r} is not within the schema "
                             "(only references starting with # are resolved)")


_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_NOT_SCHEMAS = ("const", "enum", "default", "examples")


def _keywords(schema: Any) -> Iterator[tuple[str, Any]]:
    """Every keyword and its value in a schema and its subschemas (not in values such as
    const's, nor taking property names for keywords)."""
    for key, value in schema.items() if isinstance(schema, dict) else ():
        yield key, value
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            value = list(value.values())  # subschemas by name
        if key not in _NOT_SCHEMAS:
            for sub in value if isinstance(value, list) else [value]:
                yield from _keywords(sub)
