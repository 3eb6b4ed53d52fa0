"""Eval scorers and the text metrics under them, held to the implementations people compare
against: sacreBLEU and Google's rouge-score run live on the same strings (so they are dev
dependencies: without them this module fails, it does not skip), and the official SQuAD v1.1
evaluation script's F1, which no package on PyPI carries faithfully on its own, pinned as the
exact fractions it gives (2 * shared words / (answer words + reference words), counted by hand
after its normalisation, and checked against the script).

Then every other scorer on literal answers, hostile ones included (a huge answer, a pattern
that backtracks for ever in Python's re, NaN and deep nesting in JSON), the perplexity of
logprobs, and the two suites llmmon ships."""

from __future__ import annotations

import json
import math
import time
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from rouge_score import rouge_scorer
from sacrebleu import sentence_bleu

from llmmon.config.evals import (
    BUILTIN_DIR,
    BUILTIN_SUITES,
    SCORERS,
    EvalItem,
    EvalSuite,
    read_suite,
)
from llmmon.evals import textmetrics
from llmmon.evals.scorers import (
    MAX_ANSWER,
    ItemScore,
    answer_number,
    perplexity,
    perplexity_score,
    same_json,
    score,
)

ROUGE = rouge_scorer.RougeScorer(["rougeL"])  # its defaults: no stemmer

LONG = ("After many long years of talks and several failed meetings in distant cities, the two "
        "kingdoms finally signed the Treaty of Varn, which ended the war and opened the mountain "
        "passes to traders from both sides of the border.")

# (what it tests, answer, references, SQuAD F1 of the best reference). The F1 is
# 2s / (p + t): s words shared, p of the answer, t of the reference, after normalisation
# (lower case, ASCII punctuation and a/an/the gone), e.g. "the quick brown fox" against
# "a quick brown dog jumps": [quick brown fox] and [quick brown dog jumps], 2·2 / (3 + 4).
VECTORS: list[tuple[str, str, list[str], Fraction]] = [
    ("identical", "The cat sat on the mat.", ["The cat sat on the mat."], Fraction(1)),
    ("disjoint", "green apples", ["red bananas"], Fraction(0)),
    ("partial overlap", "the quick brown fox", ["a quick brown dog jumps"], Fraction(4, 7)),
    ("punctuation", "Paris!!!", ["paris"], Fraction(1)),
    ("case", "NEW YORK CITY", ["New York"], Fraction(4, 5)),
    ("articles", "an apple a day", ["the apple day"], Fraction(1)),
    ("decimal point removed", "It costs 3.5 dollars", ["3.5 dollars", "$3.50"], Fraction(2, 3)),
    ("accents", "São Paulo, Brasil", ["Sao Paulo"], Fraction(2, 5)),
    ("empty answer", "", ["something"], Fraction(0)),
    ("long answer", LONG, ["the Treaty of Varn", "Varn"], Fraction(6, 37)),  # p 34, t 3
    ("several references", "Blue Whale", ["the blue whale", "whale", "a large mammal"],
     Fraction(1)),
    ("repeated words", "cat cat cat cat", ["cat sat"], Fraction(1, 3)),  # "cat" counts once
    ("reordered", "mat the on sat cat the", ["the cat sat on the mat"], Fraction(1)),
    ("too short", "cat", ["the cat sat on the mat"], Fraction(2, 5)),
    ("digit range", "2-3 weeks", ["two to three weeks"], Fraction(1, 3)),  # "23 weeks"
    ("apostrophes", "It's Tobias Fenn's clock", ["Tobias Fenn"], Fraction(1, 3)),
    ("whitespace", "  the\n\nanswer\tis   42  ", ["42"], Fraction(1, 2)),
    ("references together", "the cat is on the mat",
     ["the cat is on a mat", "there is a cat on the mat"], Fraction(1)),
    ("articles inside words", "theatre and anthem", ["the theatre"], Fraction(1, 2)),
    ("curly quotes stay", "“Paris”", ["Paris"], Fraction(0)),  # not ASCII punctuation
    ("nothing but an article", "The.", ["a"], Fraction(0)),  # both empty: 0, as the script
    ("thousands separator", "1,234 people", ["1234 people"], Fraction(1)),
    ("upper case", "PARIS is the capital", ["Paris is the capital"], Fraction(1)),
    ("html entity", "fish &amp; chips", ["fish & chips"], Fraction(4, 5)),  # "fish amp chips"
    ("reference lengths tie", "one two three four five",
     ["one two three four", "one two three four five six"], Fraction(10, 11)),
    ("three words", "red green blue", ["red green blue yellow"], Fraction(6, 7)),
    ("one word", "yes", ["yes"], Fraction(1)),
    ("no bigram in common", "dog cat bird fish", ["fish bird cat dog"], Fraction(1)),
    ("cafe", "café au lait", ["cafe au lait"], Fraction(2, 3)),
    ("cjk and emoji", "答案是 北京 👍", ["北京"], Fraction(1, 2)),
    ("a sentence around the answer", "The capital of France is Paris.", ["Paris"],
     Fraction(1, 3)),
    ("answer longer than reference", "press the fallen apples into cider and sell it",
     ["press them into cider"], Fraction(1, 2)),  # [press fallen apples into cider and
]                                                 # sell it] 8, [press them into cider] 4
IDS = [v[0] for v in VECTORS]


def item(scorer: str | None = None, reference: Any = None, **extra: Any) -> EvalItem:
    data: dict[str, Any] = {"input": "q", **extra}
    if scorer is not None:
        data["scorer"] = scorer
    if reference is not None:
        data["reference"] = reference
    return EvalItem.model_validate(data)


def scored(scorer: str, reference: Any, answer: str, **extra: Any) -> ItemScore:
    return score(item(scorer, reference, **extra), answer, "exact", 0.5)


# --- F1, ROUGE-L and BLEU against the reference implementations -----------------------------


@pytest.mark.parametrize(("name", "answer", "refs", "f1"), VECTORS, ids=IDS)
def test_f1_is_squads(name: str, answer: str, refs: list[str], f1: Fraction) -> None:
    assert max(textmetrics.squad_f1(answer, r) for r in refs) == pytest.approx(float(f1),
                                                                              abs=1e-9)
    got = score(item("f1", refs), answer, "exact", 0.5)
    assert got.value == pytest.approx(float(f1), abs=1e-9)
    assert got.passed is (f1 >= Fraction(1, 2))


@pytest.mark.parametrize(("name", "answer", "refs", "f1"), VECTORS, ids=IDS)
def test_rouge_l_is_rouge_scores(name: str, answer: str, refs: list[str], f1: Fraction) -> None:
    for ref in refs:
        expected = ROUGE.score(ref, answer)["rougeL"]
        got = textmetrics.rouge_l(answer, ref)
        assert got.precision == pytest.approx(expected.precision, abs=1e-9)
        assert got.recall == pytest.approx(expected.recall, abs=1e-9)
        assert got.fmeasure == pytest.approx(expected.fmeasure, abs=1e-9)
    best = max(ROUGE.score(ref, answer)["rougeL"].fmeasure for ref in refs)
    assert score(item("rouge_l", refs), answer, "exact", 0.5).value == pytest.approx(best,
                                                                                    abs=1e-9)


@pytest.mark.parametrize(("name", "answer", "refs", "f1"), VECTORS, ids=IDS)
def test_bleu_is_sacrebleus(name: str, answer: str, refs: list[str], f1: Fraction) -> None:
    expected = sentence_bleu(answer, refs).score / 100
    assert textmetrics.sentence_bleu(answer, refs) == pytest.approx(expected, abs=1e-9)
    got = score(item("bleu", refs), answer, "exact", 0.5)
    assert got.value == pytest.approx(min(expected, 1.0), abs=1e-9)
    assert 0.0 <= got.value <= 1.0


def test_the_vectors_exercise_what_could_go_wrong() -> None:
    """The vectors are not all alike: the parts of each metric a broken implementation would
    drop change the score of at least one of them."""
    by_name = {v[0]: v for v in VECTORS}
    # The brevity penalty: "cat" against six words matches fully but is short.
    assert sentence_bleu("cat", ["the cat sat on the mat"]).bp < 1
    # Several references count together in BLEU, not as the best one alone.
    _, answer, refs, _ = by_name["references together"]
    together = sentence_bleu(answer, refs).score
    assert together > max(sentence_bleu(answer, [r]).score for r in refs)
    # Clipping: four "cat"s match the one "cat" of the reference once.
    assert sentence_bleu("cat cat cat cat", ["cat sat"]).counts[0] == 1
    # Precision and recall differ where the answer and reference lengths differ.
    prf = ROUGE.score("New York", "NEW YORK CITY")["rougeL"]
    assert prf.precision != prf.recall
    # Effective order and smoothing: a three-word answer, a four-word one with no bigram.
    assert sentence_bleu("red green blue", ["red green blue yellow"]).score > 0
    assert sentence_bleu("dog cat bird fish", ["fish bird cat dog"]).counts[1] == 0
    # Tokenization: sacreBLEU's 13a keeps "1,234" whole and case as it is.
    assert sentence_bleu("1,234 people", ["1234 people"]).score < 100
    assert sentence_bleu("PARIS is the capital", ["Paris is the capital"]).score < 100


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="ab c.,-'1\n", max_size=40),
       st.lists(st.text(alphabet="ab c.,-'1\n", max_size=40), min_size=1, max_size=3))
def test_bleu_and_rouge_agree_on_random_text(answer: str, refs: list[str]) -> None:
    assert textmetrics.sentence_bleu(answer, refs) == pytest.approx(
        sentence_bleu(answer, refs).score / 100, abs=1e-9)
    for ref in refs:
        assert textmetrics.rouge_l(answer, ref).fmeasure == pytest.approx(
            ROUGE.score(ref, answer)["rougeL"].fmeasure, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from("abcd"), max_size=60), st.lists(st.sampled_from("abcd"),
                                                                max_size=60))
def test_bit_parallel_lcs_is_the_table_one(a: list[str], b: list[str]) -> None:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = (table[i][j] + 1 if x == y
                                   else max(table[i][j + 1], table[i + 1][j]))
    assert textmetrics.lcs_length(a, b) == table[-1][-1]


def test_normalize_answer() -> None:
    assert textmetrics.normalize_answer("  The  Cat's hat, an APPLE! ") == "cats hat apple"
    assert textmetrics.normalize_answer("theatre") == "theatre"


def test_graded_items_pass_at_the_suites_pass_score() -> None:
    graded = item("f1", "quick brown dog jumps")  # "quick brown fox": 2·2/7 ≈ 0.571
    assert score(graded, "quick brown fox", "exact", 0.5).passed is True
    assert score(graded, "quick brown fox", "exact", 0.6).passed is False
    assert score(item("bleu", "the cat sat"), "the cat sat", "exact", 1.0) == ItemScore(1.0, True)


# --- pass/fail scorers ----------------------------------------------------------------------


def test_expect_uses_the_probes_checks() -> None:
    checked = EvalItem.model_validate({"input": "q", "expect": {"contains": "Paris"}})
    assert checked.scorer_for("bleu") == "expect"
    assert score(checked, "It is Paris.", "bleu", 0.5) == ItemScore(1.0, True)
    assert score(checked, "It is London.", "bleu", 0.5) == ItemScore(0.0, False)


@pytest.mark.parametrize(("answer", "ok"), [
    ("Mars", True), ("mars.", True), ("The Mars!", True), ("  MARS  ", True),
    ("Mars is red", False), ("", False), ("Marsh", False)])
def test_exact(answer: str, ok: bool) -> None:
    assert scored("exact", "Mars", answer).passed is ok


def test_exact_takes_any_reference_and_is_the_suites_default() -> None:
    assert scored("exact", ["blue", "light blue"], "Light blue.").value == 1.0
    plain = item(reference="Mars")  # no scorer of its own: the suite's
    assert score(plain, "It is Mars.", "contains", 0.5).passed
    assert not score(plain, "It is Mars.", "exact", 0.5).passed


@pytest.mark.parametrize(("answer", "ok"), [
    ("The capital of France is Paris.", True), ("PARIS", True), ("paris, of course", True),
    ("Parisian food", False), ("a comparison", False), ("", False)])
def test_contains_whole_words(answer: str, ok: bool) -> None:
    assert scored("contains", "Paris", answer).passed is ok


def test_contains_several_words_and_references() -> None:
    refs = ["carbon dioxide", "CO2"]
    assert scored("contains", refs, "Plants take in Carbon Dioxide.").passed
    assert scored("contains", refs, "They use CO2!").passed
    assert not scored("contains", refs, "carbon and dioxide").passed
    # A reference that normalises to nothing matches nothing, not everything.
    assert not scored("contains", "The", "The capital of France is Paris.").passed


@pytest.mark.parametrize(("answer", "ok"), [
    ("HELLO", True), ("HELLO\n", True), ("Hello", False), ("HELLO world", False)])
def test_regex(answer: str, ok: bool) -> None:
    assert scored("regex", "^HELLO$", answer).passed is ok


def test_regex_reads_the_first_64_kib_in_linear_time() -> None:
    assert not scored("regex", "needle", "x" * (64 << 10) + "needle").passed
    assert scored("regex", "needle", "needle" + "x" * (8 << 20)).passed
    began = time.monotonic()
    # ^(a+)+$ takes Python's re seconds on 30 a's and a "!"; RE2 does not backtrack.
    assert not scored("regex", "^(a+)+$", "a" * 60_000 + "!").passed
    assert time.monotonic() - began < 2


@pytest.mark.parametrize(("pattern", "reason"), [
    ("(a)\\1", "backreference"), ("foo(?=bar)", "lookaround"), ("(", "not a valid"),
    ("((a{100}){100}){100}", "RE2"), ("a" * 5000, "longer than")])
def test_regex_references_that_cannot_run_are_refused_when_loaded(pattern: str,
                                                                  reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        item("regex", pattern)
    # ... and so when the scorer is the suite's rather than the item's own.
    with pytest.raises(ValidationError, match=r"items\[0\]"):
        EvalSuite.model_validate({"name": "s", "scorer": "regex",
                                  "items": [{"input": "q", "reference": pattern}]})


@pytest.mark.parametrize(("answer", "number"), [
    ("2 + 3 = 5", 5), ("The answer is 5.", 5), ("5", 5), ("1,234", 1234),
    ("It is 1,234,567.89 in all", 1234567.89), ("-3.5", -3.5), ("x = −7", -7),
    ("2023-2024", 2024), ("5-3=2", 2), ("about 1e3", 1000), ("roughly .5", 0.5),
    ("50%", 50), ("the 3rd", 3), ("five", None), ("", None)])
def test_answer_number_is_the_last_number(answer: str, number: float | None) -> None:
    assert answer_number(answer) == number


def test_number_scorer() -> None:
    assert scored("number", "5", "2 + 3 = 5").passed
    assert scored("number", "1234", "That makes 1,234 apples.").passed
    assert scored("number", "-7", "It is -7").passed
    assert not scored("number", "5", "5 apples, not 6").passed  # the last number counts
    assert scored("number", "3.14", "3.1416", tolerance=0.01).passed
    assert not scored("number", "3.14", "3.2", tolerance=0.01).passed
    assert not scored("number", "3.14", "3.1416").passed  # tolerance 0: exactly
    assert not scored("number", "5", "no idea").passed
    assert scored("number", ["4", "4.0"], "4").passed
    assert not scored("number", "1", "9" * 5000).passed  # a float, inf: no crash


@pytest.mark.parametrize("reference", ["five", "1,234", "nan", "inf", ""])
def test_number_references_must_be_finite_numbers(reference: str) -> None:
    with pytest.raises(ValidationError, match="number"):
        item("number", reference)


def test_json_answers() -> None:
    ref = '{"city": "Paris", "n": 1}'
    assert scored("json", ref, '{"n": 1.0, "city": "Paris"}').passed
    assert scored("json", ref, '```json\n{"city": "Paris", "n": 1}\n```').passed
    assert not scored("json", ref, '{"city": "Paris", "n": true}').passed
    assert not scored("json", ref, '{"city": "Paris"}').passed
    assert not scored("json", ref, 'Sure! {"city": "Paris", "n": 1}').passed
    assert scored("json", None, "[1, 2]").passed  # json alone: any JSON text
    assert not scored("json", None, "{'a': 1}").passed


def test_json_equality_is_jsons() -> None:
    assert same_json({"a": [1, 2.0]}, {"a": [1.0, 2]})
    assert not same_json(True, 1)
    assert not same_json([0], [False])
    assert not same_json({"a": None}, {})
    assert not same_json("1", 1)


@pytest.mark.parametrize("answer", [
    '{"a": NaN}', "[Infinity]", "-Infinity", "[" * 100_000 + "]" * 100_000,
    "[" * 65 + "]" * 65, '{"a": ' + "1" * 5000 + "}", "[" + "1, " * (MAX_ANSWER // 3) + "1]"])
def test_json_hostile_answers_fail_quickly(answer: str) -> None:
    began = time.monotonic()
    assert not scored("json", None, answer).passed
    assert time.monotonic() - began < 2


def test_json_nesting_up_to_64_levels_is_fine() -> None:
    assert scored("json", None, "[" * 64 + "]" * 64).passed


SCHEMA = {"type": "object", "required": ["name", "age"],
          "properties": {"name": {"type": "string", "minLength": 1},
                         "age": {"type": "integer", "minimum": 0},
                         "code": {"type": "string", "pattern": "^[A-Z]{3}$"}}}


@pytest.mark.parametrize(("answer", "ok"), [
    ('{"name": "Tom", "age": 3}', True), ('{"name": "Tom", "age": 3, "code": "LHR"}', True),
    ('{"name": "Tom", "age": 3, "code": "lhr"}', False), ('{"name": "Tom", "age": -1}', False),
    ('{"name": "Tom"}', False), ('{"name": "", "age": 3}', False), ("[]", False)])
def test_json_schema(answer: str, ok: bool) -> None:
    assert scored("json", None, answer, schema=SCHEMA).passed is ok


def test_json_schema_patterns_run_on_re2() -> None:
    schema = {"type": "string", "pattern": "^(a+)+$"}
    began = time.monotonic()
    assert not scored("json", None, json.dumps("a" * 50_000 + "!"), schema=schema).passed
    assert time.monotonic() - began < 2
    assert scored("json", None, '"aaa"', schema=schema).passed


def test_json_schema_with_a_missing_local_reference_fails_the_answer() -> None:
    assert not scored("json", None, "1", schema={"$ref": "#/$defs/nowhere"}).passed


@pytest.mark.parametrize(("extra", "reason"), [
    ({"schema": {"type": "nonsense"}}, "not a valid JSON Schema"),
    ({"schema": {"minLength": -1}}, "not a valid JSON Schema"),
    ({"schema": {"patternProperties": {"^a": {}}}}, "patternProperties"),
    ({"schema": {"properties": {"a": {"pattern": "(x)\\1"}}}}, "backreference"),
    ({"schema": {"allOf": [{"items": {"pattern": "a(?!b)"}}]}}, "lookaround"),
    ({"schema": {"$defs": {"x": {"propertyNames": {"pattern": "("}}}}}, "not a valid"),
    ({"schema": {"$ref": "https://example.com/s.json"}}, "within the schema"),
    ({"reference": '{"a": NaN}'}, "not JSON"),
    ({"reference": "{'a': 1}"}, "not JSON"),
])
def test_json_items_that_cannot_be_scored_are_refused(extra: dict[str, Any],
                                                      reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        item("json", **extra)


def test_schema_names_that_look_like_keywords_are_not_keywords() -> None:
    schema = {"properties": {"pattern": {"type": "string"}, "patternProperties": {}},
              "enum": [{"pattern": "(a)\\1"}]}
    assert scored("json", None, '{"pattern": "x"}', schema=schema).passed is False  # enum
    item("json", schema=schema)


def test_schema_is_for_the_json_scorer_only() -> None:
    with pytest.raises(ValidationError, match="json scorer"):
        item("exact", "x", schema={"type": "string"})
    with pytest.raises(ValidationError, match="json scorer"):
        EvalSuite.model_validate({"name": "s", "items": [
            {"input": "q", "reference": "x", "schema": {"type": "string"}}]})
    with pytest.raises(ValidationError, match="reference"):
        item("exact")


def test_a_huge_answer_is_scored_in_bounded_time() -> None:
    answer = "The capital of France is Paris. " * 400_000  # 12.8 MB
    for scorer, ref in [("exact", "Paris"), ("contains", "Paris"), ("regex", "Paris"),
                        ("number", "5"), ("json", None), ("f1", "Paris"),
                        ("rouge_l", "the capital of France"), ("bleu", "Paris is nice")]:
        began = time.monotonic()
        got = scored(scorer, ref, answer)
        assert 0 <= got.value <= 1
        assert time.monotonic() - began < 5, scorer


# --- perplexity -----------------------------------------------------------------------------


@pytest.mark.parametrize(("logprobs", "expected"), [
    ([None, -1.0, -3.0], math.exp(2)), ([-0.5], math.exp(0.5)), ([0.0, 0.0], 1.0),
    ([None, 1e-6, -2.0], math.exp(1)),  # a rounding error above 0 counts as 0
    ([-700.0], math.exp(700)), ([], None), ([None, None], None), ([float("nan")], None),
    ([-1.0, float("-inf")], None), ([float("inf")], None), ([-1.0, 0.5], None),
    ([-1000.0], None)])  # e^1000 overflows a float
def test_perplexity(logprobs: list[float | None], expected: float | None) -> None:
    got = perplexity(logprobs)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, rel=1e-12)


def test_perplexity_items() -> None:
    text = EvalItem.model_validate({"reference": "The cat sat.", "scorer": "perplexity"})
    with pytest.raises(ValueError, match="logprobs"):
        score(text, "anything", "exact", 0.5)
    assert perplexity_score([None, -1.0]) == ItemScore(math.e, None)
    assert perplexity_score([]) is None
    with pytest.raises(ValidationError, match="one reference"):
        EvalItem.model_validate({"reference": ["a", "b"], "scorer": "perplexity"})


# --- the suites llmmon ships ----------------------------------------------------------------

# An answer each sanity item must accept: the suite asks for something answerable.
SANITY_ANSWERS = {
    "add": "2 + 3 = 5", "multiply": "56", "subtract": "100 - 37 = 63", "divide": "12",
    "negative": "-7", "half": "4.5", "percent": "30", "thousands": "1,234",
    "square-root": "9", "round-pi": "3.14", "minutes": "120 minutes", "spider-legs": "8",
    "capital-france": "The capital of France is Paris.", "capital-japan": "Tokyo.",
    "capital-italy": "The capital of Italy is Rome.", "largest-ocean": "The Pacific Ocean.",
    "photosynthesis-gas": "Plants take in carbon dioxide.", "red-planet": "Mars.",
    "gold-symbol": "Au", "opposite-hot": "Cold", "sky-colour": "Blue.",
    "upper-case": "HELLO", "three-colours": "Red, green, and blue.",
    "iso-date": "2024-01-01", "yes-no": "Yes.", "lower-case-fruit": "apple",
    "json-object": '{"city": "Paris", "country": "France"}', "json-array": "[1, 2, 3]",
    "json-schema": '```json\n{"name": "Tom", "age": 4}\n```', "json-airport": '{"code": "LHR"}',
    "say-ok": "OK", "expect-sum": "19",
}


def test_shipped_suites_load_and_use_every_scorer() -> None:
    sanity = read_suite(BUILTIN_DIR / "sanity.jsonl")
    reading = read_suite(BUILTIN_DIR / "reading.jsonl")
    assert len(sanity) >= 30
    assert len(reading) >= 12
    used = {i.scorer_for("exact") for i in sanity + reading}
    assert used == set(SCORERS) - {"perplexity"}
    for items in (sanity, reading):
        ids = [i.id for i in items]
        assert None not in ids
        assert len(set(ids)) == len(ids)
    for name in BUILTIN_SUITES:  # every item names its scorer: any suite default will do
        for default in set(SCORERS) - {"expect"}:
            EvalSuite.model_validate({"name": "s", "builtin": name, "scorer": default})


def test_sanity_items_accept_a_right_answer_and_refuse_a_wrong_one() -> None:
    items = {i.id: i for i in read_suite(BUILTIN_DIR / "sanity.jsonl")}
    assert set(items) == set(SANITY_ANSWERS)
    for name, answer in SANITY_ANSWERS.items():
        assert score(items[name], answer, "exact", 0.5).passed, name
        assert not score(items[name], "I don't know.", "exact", 0.5).passed, name


def test_reading_items_are_questions_on_a_passage() -> None:
    for it in read_suite(BUILTIN_DIR / "reading.jsonl"):
        assert it.input is not None
        passage, question, instruction = it.input.split("\n")
        assert passage.startswith("Passage: ")
        assert question.startswith("Question: ")
        assert instruction == "Answer with a short phrase from the passage."
        assert 1 <= len(it.references()) <= 3
        assert it.scorer in ("f1", "rouge_l", "bleu")
        first = it.references()[0]  # the first answer is words of the passage
        assert textmetrics.normalize_answer(first) in textmetrics.normalize_answer(passage)
        best = score(it, first, "exact", 0.5)
        assert best.passed
        assert best.value == pytest.approx(1.0)
