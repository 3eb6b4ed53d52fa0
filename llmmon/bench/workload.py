"""The prompts a benchmark sends: synthetic ones of a chosen length, or a dataset.

Synthetic prompts start with a nonce, so no two share a prefix and a server's prefix cache
cannot turn a benchmark of prefill into one of cache hits."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llmmon.config import Prompt
from llmmon.config.files import FileProblem, read_regular

# Common short English words: one token each in the usual BPE vocabularies, so N words are
# close to N prompt tokens (the server's own count is reported beside it).
_WORDS = ("the of and to in is was for on are with as at be by this from or have an they "
         "which one you were all we can her has there been if more when will would who so "
         "no out up into than them only its time about two may then first any new very "
         "some could these other our what over such most after also made many did before "
         "must through back years where much your way well down should because each just "
         "those how too little state good very make world still own see men work long get "
         "here between both life being under never day same another know while last might "
         "us great old year off come since against go came right used take three")
WORDS = tuple(_WORDS.split())
DATASET_LIMIT = 64 << 20  # bytes of a dataset file


def synthetic(count: int, input_tokens: int, output_tokens: int, seed: int = 0
              ) -> list[Prompt]:
    """``count`` distinct prompts of about ``input_tokens`` tokens, asking for
    ``output_tokens``."""
    rng = random.Random(seed)
    prompts = []
    for i in range(count):
        nonce = f"{rng.getrandbits(64):016x}"
        words = " ".join(rng.choice(WORDS) for _ in range(max(1, input_tokens - 16)))
        text = (f"Request {nonce}. Repeat the following words back, then keep writing: "
                f"{words}")
        prompts.append(Prompt(name=f"synthetic-{i}", text=text, max_tokens=output_tokens))
    return prompts


def dataset(path: Path, output_tokens: int | None = None) -> list[Prompt]:
    """Prompts from a JSONL file (objects with `prompt` or `text`, and optionally
    `max_tokens` and `expect`, as in llmmon's config) or a CSV file with a `prompt` column."""
    try:
        text = read_regular(path, DATASET_LIMIT)
    except FileProblem as exc:
        raise ValueError(f"{path}: {exc}") from None
    rows: list[dict[str, Any]]
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
    else:
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    raise ValueError(f"{path}:{number}: not a JSON object") from None
    prompts = [_prompt(row, i, output_tokens, path) for i, row in enumerate(rows)]
    if not prompts:
        raise ValueError(f"{path}: no prompts")
    return prompts


def _prompt(row: Any, i: int, output_tokens: int | None, path: Path) -> Prompt:
    if not isinstance(row, dict) or not isinstance(row.get("prompt", row.get("text")), str):
        raise ValueError(f"{path}: item {i + 1} has no `prompt` (or `text`) string")
    data: dict[str, Any] = {"name": f"item-{i + 1}",
                            "text": row.get("prompt", row.get("text"))}
    if row.get("max_tokens") or output_tokens:
        data["max_tokens"] = int(row.get("max_tokens") or output_tokens or 0)
    if isinstance(row.get("expect"), dict):
        data["expect"] = row["expect"]
    try:
        return Prompt(**data)
    except (ValidationError, ValueError) as exc:
        raise ValueError(f"{path}: item {i + 1}: {str(exc).splitlines()[0]}") from None
