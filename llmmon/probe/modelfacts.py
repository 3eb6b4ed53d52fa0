"""The facts of a model that each server's description holds, read from literal payloads: its
parameters, size, context window and quantisation (``ModelInfo``), and what a model's name
says where the server says nothing. No I/O here: ``modelinfo.fetch_model_info`` asks.

Every value comes from a response body, so each is checked for its type and range, and text
is cut short. ``quantization`` is kept as said; ``quantization.quantization_label()`` turns it
into one of the fixed ``QUANTIZATIONS`` where a Prometheus label needs it."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any

from llmmon.probe.diagnose import model_matches

MAX_ENTRIES = 2000  # entries of a listing looked through for the configured model
TEXT_LIMIT = 1000  # characters kept of a name
# Above 2**53 a float (a Prometheus sample) no longer holds a count exactly; no model is that
# large, so a bigger figure is junk.
MAX_COUNT = 1 << 53


@dataclass
class ModelInfo:
    """What the server says about the model it serves, where it says it; None: not said."""

    served_model: str | None = None
    parameters: int | None = None
    # llama.cpp: the weights' bytes. Ollama (/api/ps): the model as loaded, its KV cache and
    # buffers included, the figure `ollama ps` shows.
    size_bytes: int | None = None
    # The most tokens one request may hold as the model is served (vLLM's max_model_len,
    # llama.cpp's slot n_ctx, Ollama's loaded context, TGI's max_total_tokens), else the
    # window it was trained with (n_ctx_train, Ollama's <arch>.context_length).
    context_length: int | None = None
    quantization: str | None = None  # as said; quantization_label() gives the fixed label
    source: str | None = None  # which routes said so: /v1/models, /api/show, /info, model name
    # Ollama (/api/ps): how much of size_bytes is in GPU memory (0: all of it on the CPU).
    size_vram_bytes: int | None = None


def _count(value: Any, zero: bool = False) -> int | None:
    """A whole number from JSON, or None for anything else: a bool, a string, NaN or infinity
    (json parses 1e400 as inf), a negative or an absurd figure, and 0 unless ``zero``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    number = round(value)
    return number if (0 < number < MAX_COUNT or (zero and number == 0)) else None


def _text(value: Any, limit: int = TEXT_LIMIT) -> str | None:
    return (value.strip()[:limit] or None) if isinstance(value, str) else None


def _said(info: ModelInfo) -> ModelInfo | None:
    """``info`` if it holds anything besides its source: a 200 with ``{}`` says nothing."""
    known = any(getattr(info, f.name) is not None for f in fields(ModelInfo) if f.name != "source")
    return info if known else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _entries(data: Any, key: str) -> list[dict[str, Any]]:
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        return []
    return [m for m in items[:MAX_ENTRIES] if isinstance(m, dict)]


def _pick(entries: list[dict[str, Any]], names: Callable[[dict[str, Any]], Iterable[Any]],
          model: str, pattern: str | None, only_one: bool) -> dict[str, Any] | None:
    """The entry that names the configured model: by its exact name first, then as a probe
    matches a served name (``model_matches``: ":latest", a model file's path, ``pattern``);
    failing both, the only entry where ``only_one`` (a server that serves one model lists it
    under any name: llama-cpp-python lists its file's path)."""
    for exact in (True, False):
        for entry in entries:
            for name in names(entry):
                if not isinstance(name, str) or len(name) > TEXT_LIMIT:
                    continue
                if name == model if exact else model_matches(model, name, pattern):
                    return entry
    return entries[0] if only_one and len(entries) == 1 else None


_SIZE = re.compile(r"^\s*(\d{1,6}(?:\.\d{1,6})?)\s*([KMBT])\s*$", re.IGNORECASE)
_SCALE = {"k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}


def parameters_from(text: Any) -> int | None:
    """``"135M"``, ``"8.0B"`` (Ollama's parameter_size, a name's size) → a count."""
    if not isinstance(text, str):
        return _count(text)
    match = _SIZE.match(text[:32])
    return _count(float(match.group(1)) * _SCALE[match.group(2).lower()]) if match else None


# --- each server's description ----------------------------------------------------------


def from_openai_models(data: Any, model: str, pattern: str | None = None) -> ModelInfo | None:
    """``GET /v1/models``: llama.cpp's ``meta`` (n_params, size in bytes, the slot's n_ctx
    and n_ctx_train, and in newer builds ftype: "Q4_K - Medium") or vLLM's and SGLang's
    ``max_model_len``, from the listed model that is the configured one (or the only one)."""
    entries = _entries(data, "data")
    chosen = _pick(entries, lambda m: [m.get("id"), *_list(m.get("aliases"))], model, pattern,
                   only_one=True)
    if chosen is None:
        return None
    meta = _dict(chosen.get("meta"))
    return _said(ModelInfo(
        served_model=_text(chosen.get("id")), parameters=_count(meta.get("n_params")),
        size_bytes=_count(meta.get("size")),
        context_length=_count(chosen.get("max_model_len")) or _count(meta.get("n_ctx"))
        or _count(meta.get("n_ctx_train")),
        quantization=_text(meta.get("ftype"), 100), source="/v1/models"))


def _list(value: Any) -> list[Any]:
    return value[:MAX_ENTRIES] if isinstance(value, list) else []


def from_ollama_show(data: Any, model: str) -> ModelInfo | None:
    """``POST /api/show``: the exact parameter count and the trained context window from
    ``model_info``, else ``details.parameter_size`` ("8.0B"); ``details.quantization_level``.
    It does not name the model (``model``, the name asked, is not evidence of it)."""
    if not isinstance(data, dict):
        return None
    details, info = _dict(data.get("details")), _dict(data.get("model_info"))
    arch = info.get("general.architecture")
    context = _count(info.get(f"{arch}.context_length")) if isinstance(arch, str) else None
    if context is None:  # no architecture named: the one key of that form there is
        found = [k for k in info if isinstance(k, str) and k.endswith(".context_length")]
        context = _count(info[found[0]]) if len(found) == 1 else None
    return _said(ModelInfo(parameters=_count(info.get("general.parameter_count"))
                           or parameters_from(details.get("parameter_size")),
                           quantization=_text(details.get("quantization_level"), 100),
                           context_length=context, source="/api/show"))


def from_ollama_ps(data: Any, model: str, pattern: str | None = None) -> ModelInfo | None:
    """``GET /api/ps``: the configured model if it is loaded (another loaded model says
    nothing of it): its size as loaded, the part in GPU memory and, in newer Ollama, the
    context it was loaded with."""
    chosen = _pick(_entries(data, "models"), lambda m: (m.get("name"), m.get("model")), model,
                   pattern, only_one=False)
    if chosen is None:
        return None
    details = _dict(chosen.get("details"))
    return _said(ModelInfo(served_model=_text(chosen.get("name")) or _text(chosen.get("model")),
                           parameters=parameters_from(details.get("parameter_size")),
                           size_bytes=_count(chosen.get("size")),
                           size_vram_bytes=_count(chosen.get("size_vram"), zero=True),
                           context_length=_count(chosen.get("context_length")),
                           quantization=_text(details.get("quantization_level"), 100),
                           source="/api/ps"))


def from_ollama(show: Any, ps: Any, model: str, pattern: str | None = None) -> ModelInfo | None:
    """Both of Ollama's answers: the loaded model's name, size and context from /api/ps,
    the exact parameter count (not "8.0B") and the rest from /api/show."""
    shown, loaded = from_ollama_show(show, model), from_ollama_ps(ps, model, pattern)
    if shown is None or loaded is None:
        return shown or loaded
    out = merge(loaded, shown)
    out.parameters = shown.parameters or loaded.parameters
    return out


def from_tgi_info(data: Any) -> ModelInfo | None:
    """``GET /info``: model_id, max_total_tokens (max_input_tokens, or max_input_length
    before TGI 2), model_dtype ("torch.float16", gone from TGI 2 on) or a ``quantize``."""
    if not isinstance(data, dict):
        return None
    return _said(ModelInfo(served_model=_text(data.get("model_id")),
                           context_length=_count(data.get("max_total_tokens"))
                           or _count(data.get("max_input_tokens"))
                           or _count(data.get("max_input_length")),
                           quantization=_text(data.get("quantize"), 100)
                           or _text(data.get("model_dtype"), 100),
                           source="/info"))


def merge(first: ModelInfo, second: ModelInfo) -> ModelInfo:
    """``first``, with ``second``'s values where it has none; the sources of both."""
    out = ModelInfo(**{f.name: getattr(first, f.name) if getattr(first, f.name) is not None
                       else getattr(second, f.name) for f in fields(ModelInfo)})
    out.source = " + ".join(s for s in (first.source, second.source) if s) or None
    return out


# --- what a name says ----------------------------------------------------------------------

# A model's size and quantisation as names carry them: "Llama-3.1-8B-Instruct",
# "qwen2.5:1.5b", "SmolLM2-135M-Instruct.Q4_1.gguf", "...-AWQ".
_NAME_SIZE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)([MBT])(?![a-z])", re.IGNORECASE)
_NAME_QUANT = re.compile(r"(?<![A-Za-z0-9])(I?Q\d(?:_[A-Z0-9]+)*|F16|BF16|F32|FP8|AWQ|GPTQ|"
                         r"INT[48])(?![A-Za-z0-9])", re.IGNORECASE)


def from_name(name: str | None) -> ModelInfo:
    """What the model's own name says, for servers that say nothing more (llama-cpp-python
    lists only a file path): a guess, marked as such by its source."""
    base = (name or "")[:TEXT_LIMIT].rsplit("/", 1)[-1]
    size, quant = _NAME_SIZE.search(base), _NAME_QUANT.search(base)
    return ModelInfo(parameters=parameters_from(size.group(1) + size.group(2)) if size else None,
                     quantization=quant.group(1).upper() if quant else None,
                     source="model name" if size or quant else None)


def complete(info: ModelInfo, name: str | None) -> ModelInfo:
    """``info`` with what the name says where the server said nothing (the source says
    when the name was used)."""
    guess = from_name(info.served_model or name)
    used = False
    if info.parameters is None and guess.parameters is not None:
        info.parameters, used = guess.parameters, True
    if info.quantization is None and guess.quantization is not None:
        info.quantization, used = guess.quantization, True
    if used:
        info.source = f"{info.source} + model name" if info.source else "model name"
    return info
