"""Why a probe failed, in words: the server's own message (bounded, secrets masked) and a
hint where llmmon knows the usual cause. Details are shown on the status page, in
``llmmon probe`` and /probes, and logged; never used as label values."""

from __future__ import annotations

import re
from pathlib import PurePosixPath, PureWindowsPath

from llmmon.config import EndpointConfig, compile_regex

MAX_DETAIL = 300  # characters of a server's message kept
SCAN = 1000  # characters the credential patterns read: their work stays bounded
MASK = "****"
# Things that look like credentials in a message, whatever key was configured: bearer and
# basic tokens, OpenAI-style sk- keys, key=value pairs whose key says secret. Quantifiers
# are bounded where they meet, so no input makes them backtrack for long.
_CREDENTIALS = (
    (re.compile(r"(?i)\b(bearer|basic)\s{1,5}[A-Za-z0-9._~+/=-]{6,}"), rf"\1 {MASK}"),
    (re.compile(r"\b(sk-ant|sk-proj|sk|hf|ghp|xox[bp])[-_][A-Za-z0-9_*.-]{6,}"), rf"\1-{MASK}"),
    (re.compile(r"(?i)\b([\w-]{0,20}?(?:api[_-]?key|token|secret|password)[\w-]{0,20}?)"
                r"([\"']?\s{0,3}[:=]\s{0,3}[\"']?)[^\s\"',;&}]{4,}"), rf"\1\2{MASK}"),
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def redact(text: str, secrets: list[str], patterns: bool = True) -> str:
    """``text`` with every configured secret and (with ``patterns``) anything credential-like
    masked, control characters and unencodable ones dropped, and cut to ``MAX_DETAIL``
    characters (after masking, so that a key cut at the boundary cannot leave its head)."""
    for secret in sorted(_forms(secrets), key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = text[:SCAN]
    for pattern, replacement in _CREDENTIALS if patterns else ():
        text = pattern.sub(replacement, text)
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates
    text = " ".join(_CONTROL.sub("", text).split())
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


def _forms(secrets: list[str]) -> set[str]:
    """Each secret as a message may quote it: as is, escaped (h11 quotes a header value with
    a line break as bytes), and line by line."""
    forms = set()
    for secret in secrets:
        forms |= {secret, repr(secret)[1:-1], repr(secret.encode())[2:-1],
                  *secret.splitlines()}
    return {f for f in forms if len(f.strip()) >= 4}


# --- served model ----------------------------------------------------------------------

# What may follow a model name in the name of the same model: a dated snapshot
# (gpt-4o-mini-2024-07-18, claude-sonnet-4-5-20250929), a snapshot number (gpt-4-0613,
# gemini-1.5-pro-001) or a version (-v1:0). Never a word or a size: gpt-4o is not
# gpt-4o-mini, o1 is not o1-preview, SmolLM2 is not SmolLM2-360M, llama3.2 is not llama3.2:70b.
_VERSION_SUFFIX = re.compile(r"(?:-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{3,4}|v\d+(?:[.:]\d+)*))+")
_WEIGHTS = (".gguf", ".ggml", ".bin", ".safetensors")


def model_matches(configured: str, served: str, pattern: str | None = None) -> bool:
    """Whether a response that names ``served`` answers a probe configured for
    ``configured``: the same name, the same name with a version suffix, the same model file
    (llama.cpp answers with its path), or a name ``pattern`` (served_model) accepts."""
    # RE2: the served name comes from the server, so the pattern must run in linear time.
    if pattern is not None and compile_regex(pattern).fullmatch(served) is not None:
        return True
    want, got = _canonical(configured), _canonical(served)
    if want == got:
        return True
    if (want.endswith(_WEIGHTS) or got.endswith(_WEIGHTS)) and _stem(want) == _stem(got):
        return True
    # Aliases of the newest snapshot: "-latest", and Anthropic's "claude-sonnet-4-0".
    base = re.sub(r"(-\d+)-0$", r"\1", re.sub(r"-latest$", "", want))
    return got.startswith(base) and _VERSION_SUFFIX.fullmatch(got[len(base):]) is not None


def _canonical(name: str) -> str:
    # Ollama: a name without a tag is the ":latest" one.
    return name.strip().casefold().removesuffix(":latest")


def _stem(name: str) -> str:
    """A model file's name without its folders and weights extension."""
    leaf = PureWindowsPath(PurePosixPath(name).name).name
    for ext in _WEIGHTS:
        leaf = leaf.removesuffix(ext)
    return leaf


# --- hints -----------------------------------------------------------------------------

_MODEL_UNKNOWN = re.compile(r"(?i)model.{0,80}(not found|does not exist|not exist|unknown|"
                            r"invalid|no such|not available|not supported)|"
                            r"(unknown|invalid|no such) model")


def mentions_unknown_model(message: str) -> bool:
    return _MODEL_UNKNOWN.search(message) is not None


def status_hint(endpoint: EndpointConfig, status: int, message: str) -> str | None:
    """The usual cause of an HTTP error status, from the status and the server's message."""
    lowered = message.lower()
    if status in (401, 403):
        if endpoint.api_key_env is None and endpoint.api_key_file is None:
            return "the server wants a key: set api_key_env or api_key_file"
        return "the key was rejected: check the key that api_key_env / api_key_file names"
    if "max_completion_tokens" in lowered:
        return "this model takes max_completion_tokens: set max_tokens_field: " \
               "max_completion_tokens"
    if "temperature" in lowered and status == 400:
        return "this model refuses a temperature: set temperature: null"
    if "stream_options" in lowered:
        return "this server refuses stream_options: set stream_options: false"
    if status == 404 and not mentions_unknown_model(message):
        return _path_hint(endpoint)
    if status == 429:
        return "rate limited: the server's Retry-After is honoured before the next probe"
    if status in (301, 302, 303, 307, 308):
        return "redirects are not followed (a key must not travel elsewhere): set url to " \
               "the address the server redirects to"
    return None


def _path_hint(endpoint: EndpointConfig) -> str:
    if endpoint.provider_name == "openai":
        if not endpoint.url.rstrip("/").endswith("/v1") and "/openai/" not in endpoint.url:
            return "404: the URL should end at the API base, e.g. http://host:8000/v1"
        return "404: no such route here; is this an OpenAI-compatible server?"
    suffix = {"anthropic": "/v1/messages", "ollama": "/api/chat",
              "tgi": "/generate_stream"}.get(endpoint.provider_name, "")
    return f"404: the URL should be the server's root; llmmon appends {suffix}"


def exception_hint(endpoint: EndpointConfig, message: str) -> str | None:
    """The usual cause of a connection failure, from its message."""
    lowered = message.lower()
    if "certificate verify failed" in lowered or "certificate_verify_failed" in lowered:
        return "certificate verify failed: set tls_config.ca_file to the CA that signed " \
               "the server's certificate"
    if "wrong version number" in lowered or "record layer failure" in lowered:
        return "TLS to a plain-HTTP port? use http:// in url"
    if "name or service not known" in lowered or "nodename nor servname" in lowered \
            or "temporary failure in name resolution" in lowered:
        return "the host name does not resolve"
    if "connection refused" in lowered or "errno 111" in lowered:
        return "nothing listens there: is the server up, and the port right?"
    return None


def models_hint(configured: str, listed: list[str]) -> str:
    shown = ", ".join(n if len(n) <= 100 else "…" + n[-99:] for n in listed[:10]) \
        + (" …" if len(listed) > 10 else "")
    return f"model {configured} not found; the server lists: {shown or 'no models'}"


def wrong_model_hint(configured: str) -> str:
    return (f"configured model {configured}: fix model, or set served_model to a pattern "
            "that accepts the served name (check_model: false turns the check off)")
