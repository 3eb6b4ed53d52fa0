"""Text-overlap metrics of an answer against references, each computed exactly as the
implementation people compare against computes it, so a score here is one they can check:

- ``squad_f1``: the token F1 of the official SQuAD v1.1 evaluation script (``normalize_answer``:
  lower case, ASCII punctuation removed, the articles a/an/the removed, whitespace collapsed).
- ``rouge_l``: ROUGE-L as Google's ``rouge-score`` computes it by default (no stemmer; its
  tokenizer lowercases and keeps runs of ``[a-z0-9]``).
- ``sentence_bleu``: sacreBLEU's ``sentence_bleu(hypothesis, references)`` with its defaults
  (tokenizer 13a, case kept, ``exp`` smoothing, n-grams up to 4, effective order), as a
  fraction (sacreBLEU's score / 100); several references count together, as in BLEU.

Pure functions, no dependencies; tests/test_scorers.py holds them to the reference packages.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

# --- SQuAD v1.1 ---------------------------------------------------------------------------

_PUNCTUATION = str.maketrans("", "", string.punctuation)  # ASCII only, as the script's
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD's ``normalize_answer``: lower case, without ASCII punctuation, without the
    articles a, an and the, single spaces between words."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split())


def squad_f1(prediction: str, ground_truth: str) -> float:
    """SQuAD v1.1 token F1: the harmonic mean of the share of the prediction's words found in
    the ground truth and of the ground truth's words found in the prediction, each word
    counted as often as it occurs in both. 0 when nothing is shared (both empty included)."""
    predicted = normalize_answer(prediction).split()
    truth = normalize_answer(ground_truth).split()
    same = sum((Counter(predicted) & Counter(truth)).values())
    if same == 0:
        return 0.0
    precision = same / len(predicted)
    recall = same / len(truth)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, ground_truth: str) -> bool:
    """SQuAD's exact match: equal once both are normalised."""
    return normalize_answer(prediction) == normalize_answer(ground_truth)


# --- ROUGE-L ------------------------------------------------------------------------------


class Prf(NamedTuple):
    precision: float
    recall: float
    fmeasure: float


_ROUGE_SPLIT = re.compile(r"[^a-z0-9]+")


def rouge_tokens(text: str) -> list[str]:
    """rouge-score's default tokenizer without stemming: lower case, every run of characters
    other than ``a-z0-9`` a separator (so "São" gives "s" and "o", as there)."""
    return _ROUGE_SPLIT.sub(" ", text.lower()).split()


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists, bit-parallel (Allison and
    Dix; Hyyrö): one pass over the shorter list, each step a few operations on an integer
    with a bit per token of the longer, so a long answer against a short reference costs
    little time and no table."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return 0
    masks: dict[str, int] = {}
    for i, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(a)) - 1
    row = full  # a 0 bit: a position of `a` matched so far
    for token in b:
        matched = row & masks.get(token, 0)
        row = ((row + matched) | (row - matched)) & full
    return len(a) - row.bit_count()


def rouge_l(prediction: str, target: str) -> Prf:
    """ROUGE-L of ``prediction`` against ``target``: LCS over the prediction's length
    (precision), over the target's (recall), and their harmonic mean."""
    predicted, wanted = rouge_tokens(prediction), rouge_tokens(target)
    if not predicted or not wanted:
        return Prf(0.0, 0.0, 0.0)
    common = lcs_length(wanted, predicted)
    precision = common / len(predicted)
    recall = common / len(wanted)
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return Prf(precision, recall, f)


# --- BLEU ---------------------------------------------------------------------------------

MAX_ORDER = 4
# mteval-v13a's tokenization, as sacreBLEU's "13a" does it: these symbols stand apart;
# a period or comma does unless it is between digits; a dash after a digit does.
_SYMBOLS = re.compile("([" + re.escape("{|}~[\\]^_` !\"#$%&()*+:;<=>?@/") + "])")
_PERIOD_AFTER = re.compile(r"([^0-9])([\.,])")
_PERIOD_BEFORE = re.compile(r"([\.,])([^0-9])")
_DASH_AFTER_DIGIT = re.compile(r"([0-9])(-)")


def tokenize_13a(line: str) -> list[str]:
    """sacreBLEU's default tokenizer (mteval-v13a) on a segment, trailing space stripped."""
    line = line.rstrip().replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = (line.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                .replace("&gt;", ">"))
    line = _SYMBOLS.sub(r" \1 ", f" {line} ")
    line = _PERIOD_AFTER.sub(r"\1 \2 ", line)
    line = _PERIOD_BEFORE.sub(r" \1 \2", line)
    return _DASH_AFTER_DIGIT.sub(r"\1 \2 ", line).split()


def _ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def _log(value: float) -> float:
    return math.log(value) if value else -9999999999.0  # sacreBLEU's floor for log(0)


def sentence_bleu(hypothesis: str, references: Sequence[str]) -> float:
    """sacreBLEU's ``sentence_bleu(hypothesis, references).score / 100``.

    Modified n-gram precision for n = 1..4, each hypothesis n-gram counted at most as often
    as in the reference that has it most; the brevity penalty against the reference whose
    length is closest to the hypothesis's (the shorter on a tie); an n-gram order without a
    match counts as 1 / (2^k * total), k the number of such orders so far ("exp" smoothing);
    orders the hypothesis is too short for are left out (effective order). 0 when no word
    matches at all."""
    hyp = tokenize_13a(hypothesis)
    refs = [tokenize_13a(r) for r in references]
    best: Counter[tuple[str, ...]] = Counter()
    for ref in refs:
        for n in range(1, MAX_ORDER + 1):
            for gram, count in Counter(_ngrams(ref, n)).items():
                best[gram] = max(best[gram], count)
    correct = [0] * MAX_ORDER
    total = [max(0, len(hyp) - n + 1) for n in range(1, MAX_ORDER + 1)]
    for n in range(1, MAX_ORDER + 1):
        found = Counter(g for g in _ngrams(hyp, n) if g in best)
        correct[n - 1] = sum(min(count, best[g]) for g, count in found.items())
    if not any(correct):
        return 0.0
    ref_len = min((len(r) for r in refs), key=lambda length: (abs(len(hyp) - length), length))
    penalty = 1.0
    if len(hyp) < ref_len:
        penalty = math.exp(1 - ref_len / len(hyp))
    logs = []
    doubled = 1.0
    for n in range(MAX_ORDER):
        if total[n] == 0:
            break
        if correct[n] == 0:
            doubled *= 2
            precision = 100.0 / (doubled * total[n])
        else:
            precision = 100.0 * correct[n] / total[n]
        logs.append(_log(precision))
    return penalty * math.exp(sum(logs) / len(logs)) / 100
