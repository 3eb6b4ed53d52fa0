"""A fixed vocabulary for a model's quantisation. Whatever a server or a model's name says
("Q4_K - Medium", "torch.float16", "bitsandbytes-nf4") maps to one of ``QUANTIZATIONS``, so a
Prometheus label built from it never carries text from a response body."""

from __future__ import annotations

import re

QUANTIZATIONS: tuple[str, ...] = (
    # unquantised
    "F32", "F16", "BF16",
    # 8- and 4-bit floating point
    "FP8", "MXFP4", "NVFP4",
    # GGUF types whose tensors share one block encoding
    "Q8_0", "Q6_K", "Q5_1", "Q5_0", "Q4_1", "Q4_0", "Q2_K",
    # GGUF k-quant mixes (llama.cpp's file types: several encodings in one file)
    "Q5_K_M", "Q5_K_S", "Q4_K_M", "Q4_K_S", "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q2_K_S",
    # GGUF i-quants and ternary types
    "IQ4_XS", "IQ4_NL", "IQ3_M", "IQ3_S", "IQ3_XS", "IQ3_XXS", "IQ2_M", "IQ2_S", "IQ2_XS",
    "IQ2_XXS", "IQ1_M", "IQ1_S", "TQ2_0", "TQ1_0",
    # the GPU servers' methods (vLLM, TGI, SGLang)
    "AWQ", "GPTQ", "EXL2", "BITSANDBYTES", "EETQ", "INT8", "INT4",
    "other",  # said, but not one of the above
    "unknown",  # not said
)
_LABELS = frozenset(QUANTIZATIONS)

# Spellings of the same thing, after upper-casing and turning " ", "-" and "." into "_".
_ALIASES = {
    "ALL_F32": "F32", "FLOAT32": "F32", "FP32": "F32", "TORCH_FLOAT32": "F32",
    "FLOAT16": "F16", "FP16": "F16", "HALF": "F16", "TORCH_FLOAT16": "F16",
    "BFLOAT16": "BF16", "TORCH_BFLOAT16": "BF16",
    "MXFP4_MOE": "MXFP4",  # llama.cpp's "MXFP4 MoE", Ollama's "MXFP4_MOE" (gpt-oss)
    "IQ3_S_MIX": "IQ3_M",  # llama.cpp names its IQ3_M file type "IQ3_S mix - 3.66 bpw"
    "NF4": "BITSANDBYTES", "BNB": "BITSANDBYTES",
    "UNKNOWN": "unknown",  # Ollama's name for a file type it does not know
}
# Methods named with a variant after them: TGI's "bitsandbytes-nf4", vLLM's "awq_marlin".
_PREFIXES = ("BITSANDBYTES", "GPTQ", "AWQ", "EXL2", "EETQ")
# Formats named inside a longer name: vLLM's "fbgemm_fp8", torch's "float8_e4m3fn".
_PARTS = (("FP8", "FP8"), ("FLOAT8", "FP8"), ("INT8", "INT8"), ("INT4", "INT4"))
_SIZES = {"SMALL": "_S", "MEDIUM": "_M", "LARGE": "_L"}


def quantization_label(text: str | None) -> str:
    """One of ``QUANTIZATIONS`` for what was said: "unknown" when nothing was, "other" when
    it is none of them. Case does not matter."""
    if not isinstance(text, str) or not text.strip():
        return "unknown"
    if len(text) > 100:
        return "other"
    key = text.strip().upper().removesuffix(" (GUESSED)")
    # llama.cpp's file type names: "Q4_K - Medium", "IQ4_XS - 4.25 bpw", "all F32".
    base, _, rest = key.partition(" - ")
    size = _SIZES.get(rest.strip())
    if size and base.endswith("_K"):
        # Its Q2_K file type is "Q2_K - Medium"; the small one is "Q2_K - Small".
        base = base if (base, size) == ("Q2_K", "_M") else base + size
    key = re.sub(r"[\s.\-]+", "_", base.strip())
    key = _ALIASES.get(key, key)
    if key in _LABELS:
        return key
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return prefix
    return next((label for part, label in _PARTS if part in key), "other")


# Bits each weight takes in the encoding a label names, its block's scales included, from the
# block layouts of ggml-common.h: Q4_1 keeps 32 weights in 16 bytes of nibbles plus an f16
# scale and an f16 minimum, 20 bytes, 5.0 bits. A GGUF file keeps a few tensors (the output
# layer, often) in a wider encoding, so its average is a little higher. The k-quant mixes
# (Q4_K_M...), the i-quant mixes (IQ3_M, IQ3_XS, IQ2_M) and the methods whose size depends on
# a group size (AWQ, GPTQ, EXL2, bitsandbytes, INT4) have no one figure and are left out.
_BITS = {
    "F32": 32.0, "F16": 16.0, "BF16": 16.0, "FP8": 8.0, "INT8": 8.0,
    "Q8_0": 8.5, "Q6_K": 6.5625, "Q5_1": 6.0, "Q5_0": 5.5, "Q4_1": 5.0, "Q4_0": 4.5,
    "Q2_K": 2.625, "MXFP4": 4.25, "NVFP4": 4.5, "IQ4_NL": 4.5, "IQ4_XS": 4.25,
    "IQ3_S": 3.4375, "IQ3_XXS": 3.0625, "IQ2_S": 2.5625, "IQ2_XS": 2.3125, "IQ2_XXS": 2.0625,
    "IQ1_M": 1.75, "IQ1_S": 1.5625, "TQ2_0": 2.0625, "TQ1_0": 1.6875,
}


def bits_per_weight(label: str) -> float | None:
    """The nominal bits per weight of a label of ``QUANTIZATIONS``; None where there is no
    single figure (see ``_BITS``)."""
    return _BITS.get(label)
