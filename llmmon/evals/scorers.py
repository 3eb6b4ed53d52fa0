"""Scoring an eval item's answer: ``score`` gives each item a value in 0..1 and whether it
passed; ``perplexity`` turns the token logprobs a server reported for an item's reference
text into that text's perplexity (``perplexity`` items are not scored from an answer).

Scorers (``EvalItem.scorer_for``): ``expect`` (the probe's checks), ``exact`` and
``contains`` (SQuAD-normalised), ``regex`` (RE2), ``number``, ``json`` (optionally a JSON
Schema and an expected value) score 1 or 0; ``f1``, ``rouge_l`` and ``bleu``
(``textmetrics``) score in between and pass at the suite's ``pass_score``. With several
references the best one counts, but for BLEU, whose references count together.

Whatever a server sends, scoring stays bounded: text scorers read the first 256 KiB of an
answer (``number`` reads it all, in one linear pass), regular expressions (RE2, linear) its
first 64 KiB, and JSON deeper than 64 levels or over 256 KiB fails, unparsed or unchecked.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from llmmon.config import regex_search
from llmmon.config.evals import EvalItem
from llmmon.evals import textmetrics
from llmmon.probe.checks import MAX_REGEX_TEXT, passes, unfenced

MAX_ANSWER = 256 << 10  # characters of an answer the text scorers read
MAX_JSON_DEPTH = 64
LOGPROB_SLACK = 1e-3  # a logprob this far above 0 is rounding; further, the server's junk
GRADED = ("f1", "rouge_l", "bleu")


@dataclass(frozen=True)
class ItemScore:
    """``value``: 0..1 (1 or 0 for pass/fail scorers); for perplexity the perplexity.
    ``passed``: whether the item counts as answered right; None for perplexity."""

    value: float
    passed: bool | None


def score(item: EvalItem, answer: str, default_scorer: str, pass_score: float) -> ItemScore:
    """The item's score for ``answer`` by its scorer (the suite's ``default_scorer`` when
    the item names none). A graded scorer's item passes at ``pass_score`` or above.

    Raises ValueError for a ``perplexity`` item, which has no answer to score: the runner
    asks the server for the logprobs of its reference and calls ``perplexity_score``."""
    scorer = item.scorer_for(default_scorer)
    if scorer == "perplexity":
        raise ValueError("a perplexity item is scored from logprobs: use perplexity_score")
    if scorer in GRADED:
        value = min(1.0, max(0.0, _GRADERS[scorer](answer[:MAX_ANSWER], item.references())))
        return ItemScore(value, value >= pass_score)
    check = _CHECKS.get(scorer)
    if check is None:
        raise ValueError(f"unknown scorer {scorer!r}")
    ok = check(item, answer)
    return ItemScore(1.0 if ok else 0.0, ok)


def perplexity(token_logprobs: Sequence[float | None]) -> float | None:
    """exp(-mean) of the natural-log token logprobs, the Nones (a text's first token, which
    nothing predicts) left out. None when there is no logprob, or when the server's are not
    logprobs: NaN, infinite, not a number, above 0 by more than rounding, or so low that the
    perplexity overflows a float."""
    values: list[float] = []
    for logprob in token_logprobs:
        if logprob is None:
            continue
        if (isinstance(logprob, bool) or not isinstance(logprob, int | float)
                or not math.isfinite(logprob) or logprob > LOGPROB_SLACK):
            return None
        values.append(min(float(logprob), 0.0))
    if not values:
        return None
    try:
        return math.exp(-math.fsum(values) / len(values))
    except OverflowError:
        return None


def perplexity_score(token_logprobs: Sequence[float | None]) -> ItemScore | None:
    """A perplexity item's score: the perplexity, neither passed nor failed; None when the
    logprobs give none (``perplexity``)."""
    value = perplexity(token_logprobs)
    return None if value is None else ItemScore(value, None)


# --- pass/fail scorers --------------------------------------------------------------------


def _expect(item: EvalItem, answer: str) -> bool:
    return item.expect is not None and passes(item.expect, answer)


def _exact(item: EvalItem, answer: str) -> bool:
    said = textmetrics.normalize_answer(answer[:MAX_ANSWER])
    return any(said == textmetrics.normalize_answer(ref) for ref in item.references())


def _contains(item: EvalItem, answer: str) -> bool:
    """A reference's normalised words, together and in order, among the answer's: "Paris"
    is in "The capital of France is Paris.", "art" is not in "a party". A reference that
    normalises to nothing (only articles and punctuation) matches nothing."""
    said = f" {textmetrics.normalize_answer(answer[:MAX_ANSWER])} "
    wanted = (textmetrics.normalize_answer(ref) for ref in item.references())
    return any(ref and f" {ref} " in said for ref in wanted)


def _regex(item: EvalItem, answer: str) -> bool:
    text = answer[:MAX_REGEX_TEXT]
    return any(regex_search(pattern, text) for pattern in item.references())


# A number: an optional sign (not a hyphen between words or digits, as in 2023-2024), digits
# with or without thousands commas, decimals, an exponent; "5." at the end of a sentence is 5.
_NUMBER = re.compile(r"(?:(?<![0-9A-Za-z])[-−])?"
                     r"(?:(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?|\.[0-9]+)"
                     r"(?:[eE][-+]?[0-9]+)?")


def answer_number(answer: str) -> float | None:
    """The LAST number in the answer, as the probe's ``expect.number`` takes it: models state
    the result last, after restating the question or working ("2 + 3 = 5", "… so the
    answer is 42."), and a suite scores as a probe checks. "1,234" is 1234, "-3.5" is -3.5
    (with U+2212, the minus sign, too), "5." is 5, "1e3" is 1000, "2023-2024" ends in 2024.
    Digits are ASCII; words ("five") are no number, nor is a fraction ("1/2" gives 2)."""
    last = None
    for match in _NUMBER.finditer(answer):
        last = match
    if last is None:
        return None
    return float(last.group().replace(",", "").replace("−", "-"))


def _number(item: EvalItem, answer: str) -> bool:
    found = answer_number(answer)
    return found is not None and any(abs(found - float(ref)) <= item.tolerance
                                     for ref in item.references())


class _Invalid(Exception):
    """Not a JSON answer."""


def _refuse_constant(name: str) -> Any:
    raise _Invalid(name)  # NaN, Infinity, -Infinity: Python's json takes them, JSON does not


def parse_json_answer(answer: str) -> tuple[bool, Any]:
    """(True, value) when the answer is a JSON text (a Markdown fence around it allowed),
    strict (no NaN or Infinity), at most 256 KiB and 64 levels deep; else (False, None)."""
    text = unfenced(answer)
    if len(text) > MAX_ANSWER:
        return False, None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError, _Invalid):
        return False, None
    return (True, value) if _depth(value) <= MAX_JSON_DEPTH else (False, None)


def _depth(value: Any) -> int:
    """How deeply a parsed JSON value nests, counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in
                         (node.values() if isinstance(node, dict) else node))
    return deepest


def same_json(a: Any, b: Any) -> bool:
    """JSON equality: objects by keys and values whatever their order, numbers by value (1
    equals 1.0), but true is not 1 nor false 0, as Python's == has it."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _re2_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    """JSON Schema's ``pattern`` on RE2, as every configured pattern runs (jsonschema's own
    uses Python's backtracking re); a string too long to search does not match."""
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and (
            len(instance) > MAX_REGEX_TEXT or not regex_search(pattern, instance)):
        yield ValidationError(f"does not match {pattern!r}")


@functools.cache
def schema_validator() -> Any:
    """jsonschema's 2020-12 validator with RE2 for ``pattern``. The config refuses
    patternProperties, and any pattern RE2 cannot run (config/evals.py). Imported when a
    suite first needs it: jsonschema and its companions are 2.8 MiB of a daemon's memory."""
    from jsonschema import Draft202012Validator, validators

    return validators.extend(  # type: ignore[no-untyped-call]
        Draft202012Validator, {"pattern": _re2_pattern})


def matches_schema(value: Any, schema: dict[str, Any]) -> bool:
    """Whether ``value`` is valid under ``schema`` (JSON Schema 2020-12). A reference that
    cannot be resolved (only local ones are allowed) makes it invalid."""
    from referencing.exceptions import Unresolvable

    try:
        return bool(schema_validator()(schema).is_valid(value))
    except (Unresolvable, RecursionError):
        return False


def _json(item: EvalItem, answer: str) -> bool:
    ok, value = parse_json_answer(answer)
    if not ok:
        return False
    if item.schema_ is not None and not matches_schema(value, item.schema_):
        return False
    refs = item.references()
    return not refs or any(same_json(value, json.loads(ref)) for ref in refs)


_CHECKS: dict[str, Callable[[EvalItem, str], bool]] = {
    "expect": _expect, "exact": _exact, "contains": _contains, "regex": _regex,
    "number": _number, "json": _json,
}


def _f1(answer: str, refs: list[str]) -> float:
    return max(textmetrics.squad_f1(answer, ref) for ref in refs)


def _rouge_l(answer: str, refs: list[str]) -> float:
    return max(textmetrics.rouge_l(answer, ref).fmeasure for ref in refs)


_GRADERS: dict[str, Callable[[str, list[str]], float]] = {
    "f1": _f1, "rouge_l": _rouge_l, "bleu": textmetrics.sentence_bleu,
}
