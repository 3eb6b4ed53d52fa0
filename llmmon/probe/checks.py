"""Answer checks: does the text a probe got back look like a correct answer?"""

from __future__ import annotations

import json
import re

from llmmon.config import Expect, JSONExpect, regex_search

# RE2 is linear in the text but also in the pattern's size: `a.{500}c` over 4 MiB of a hostile
# answer took 19 s. A probe's answer is a few dozen tokens; a regex reads its first 64 KiB.
MAX_REGEX_TEXT = 64 << 10
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")
_LANGUAGE = re.compile(r"[a-zA-Z]*")


def passes(expect: Expect, text: str) -> bool:
    """True when every condition of ``expect`` holds for ``text``."""
    fold = str.casefold if expect.ignore_case else str
    if expect.contains is not None and fold(expect.contains) not in fold(text):
        return False
    # RE2, linear in the text: a server's answer cannot stall the loop on a pattern such
    # as ^(a+)+$ (validated as RE2 when the config was loaded).
    if expect.regex is not None and not regex_search(expect.regex, text[:MAX_REGEX_TEXT],
                                                     expect.ignore_case):
        return False
    if expect.equals is not None and fold(text.strip()) != fold(expect.equals.strip()):
        return False
    if expect.json_ and not _json_ok(expect.json_, text):
        return False
    return expect.number is None or _number_ok(expect.number, expect.tolerance, text)


def unfenced(answer: str) -> str:
    """The answer without a Markdown fence around it (```json ... ```); done without a regex
    such as ``\\s*```$``, which a hostile answer's run of spaces makes quadratic (40,000
    spaces took 3 s on the loop)."""
    text = answer.strip()
    if text.startswith("```"):
        text = text[3:]
        language = _LANGUAGE.match(text)
        text = text[language.end() if language else 0:]
    if text.endswith("```"):
        text = text[:-3]
    return text.strip()


def _json_ok(spec: JSONExpect | bool, text: str) -> bool:
    # Chat models like to wrap JSON in a Markdown fence; that is still a JSON answer.
    try:
        value = json.loads(unfenced(text))
    except (ValueError, RecursionError):
        return False
    keys = spec.required_keys if isinstance(spec, JSONExpect) else []
    return not keys or (isinstance(value, dict) and all(k in value for k in keys))


def _number_ok(expected: float, tolerance: float, text: str) -> bool:
    """The last number in the answer: "2 + 3 = 5" and "The answer is 5." both give 5."""
    numbers = _NUMBER.findall(text)
    if not numbers:
        return False
    return abs(float(numbers[-1].replace(",", "")) - expected) <= tolerance


def describe(expect: Expect) -> str:
    """The expectation in words, for a failed check's detail."""
    parts = []
    if expect.contains is not None:
        parts.append(f"contains {expect.contains!r}")
    if expect.regex is not None:
        parts.append(f"regex {expect.regex!r}")
    if expect.equals is not None:
        parts.append(f"equals {expect.equals!r}")
    if expect.json_:
        keys = expect.json_.required_keys if isinstance(expect.json_, JSONExpect) else []
        parts.append("JSON" + (f" with keys {', '.join(keys)}" if keys else ""))
    if expect.number is not None:
        tolerance = f" ± {expect.tolerance:g}" if expect.tolerance else ""
        parts.append(f"number {expect.number:g}{tolerance}")
    case = " (ignoring case)" if expect.ignore_case else ""
    return "expect: " + ", ".join(parts) + case
