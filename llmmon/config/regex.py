"""Regular expressions from the configuration, run by RE2 in linear time."""

from __future__ import annotations

import functools
import re
from typing import Annotated, Any

from pydantic import AfterValidator

# Patterns from the config run on text from servers and processes, on the event loop or a
# sampler's tick: RE2 (linear time), never Python's backtracking re, which takes seconds for
# ^(a+)+$ on 27 a's and a "!". RE2 has no backreferences and no lookarounds.
MAX_REGEX = 4096
_LOOKAROUND = re.compile(r"\(\?<?[=!]")
# The patterns llmmon itself ships (the host sampler's default filters). Each is linear in
# Python's re too (no nested repetition), so they run there: RE2, with libstdc++ 2.4 MiB of
# every daemon, loads with the first pattern a user's config brings.
PSEUDO_MOUNTS = r"^/(proc|sys|dev|run)($|/)"
VIRTUAL_DEVICES = r"^(loop|ram)\d*$"
LOOPBACK = r"^lo$"
BUILTIN = frozenset({PSEUDO_MOUNTS, VIRTUAL_DEVICES, LOOPBACK})


@functools.lru_cache(maxsize=256)
def compile_regex(pattern: str, ignore_case: bool = False) -> Any:
    """``pattern`` compiled by RE2 (``re2.error`` if RE2 cannot), kept for the next call;
    one of llmmon's own (``BUILTIN``) by Python's re."""
    if pattern in BUILTIN:
        return re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    import re2  # type: ignore[import-untyped]  # here, not at start-up: see BUILTIN

    options = re2.Options()
    options.log_errors = False  # RE2 would write its own copy of the error to stderr
    options.case_sensitive = not ignore_case
    return re2.compile(pattern, options)


def searchable(text: str) -> str:
    """``text`` as RE2 can take it: a lone surrogate (from a server's answer, or a process's
    command line with invalid UTF-8) would make it raise, so it becomes U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def regex_search(pattern: str, text: str, ignore_case: bool = False) -> bool:
    """Whether ``pattern`` (RE2) is found in ``text``, in linear time. A ``$`` also matches
    before a final newline, as in Python's re, so ``^5$`` still accepts the answer "5\\n"."""
    regex = compile_regex(pattern, ignore_case)
    text = searchable(text)
    return (regex.search(text) is not None
            or (text.endswith("\n") and regex.search(text[:-1]) is not None))


def _re2_reason(pattern: str, exc: Exception) -> str:
    detail = exc.args[0] if exc.args else ""
    detail = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
    if _LOOKAROUND.search(pattern):
        return "lookaround"
    if re.search(r"\\[1-9]", pattern) and "escape" in detail:
        return "backreference"
    return detail[:200] or "cannot compile"


def _compiles(value: str | None) -> str | None:
    if value is None:
        return value
    if len(value) > MAX_REGEX:
        raise ValueError(f"is longer than {MAX_REGEX} characters")
    try:  # a pattern Python cannot read is not one (served_model is matched by re, too)
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"is not a valid regular expression ({exc.msg})") from None
    if value in BUILTIN:
        return value
    import re2

    try:
        compile_regex(value)
    except re2.error as exc:
        raise ValueError(f"is not supported in RE2 syntax ({_re2_reason(value, exc)}): "
                         "configured patterns run in linear time, without backreferences "
                         "or lookarounds") from None
    return value


Regex = Annotated[str, AfterValidator(_compiles)]
