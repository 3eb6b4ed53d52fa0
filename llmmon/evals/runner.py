"""One run of an evaluation suite against one endpoint: ``sample`` items from where the last
run stopped, ``concurrency`` at a time, within the run's timeout, its token cap and the
endpoint's daily budget. Each item is a probe (``run_probe``: the same deadline, errors and
redaction) whose answer is scored; a perplexity item asks the server for the logprobs of
its reference text instead."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from llmmon.config import EndpointConfig, Prompt
from llmmon.config.evals import EvalItem, EvalSuite
from llmmon.evals.logprobs import prompt_logprobs
from llmmon.evals.scorers import perplexity, score
from llmmon.probe.run import run_probe

log = logging.getLogger(__name__)
MAX_ANSWER = 300  # characters of an answer kept per item for /probes


@dataclass
class ItemResult:
    index: int  # the item's line in the suite, from 0
    id: str | None
    scorer: str
    value: float | None = None  # None: nothing to score
    passed: bool | None = None
    error: str | None = None  # the failed request's reason
    detail: str | None = None
    answer: str = ""
    e2e: float | None = None
    tokens: int = 0
    nll: float = 0.0  # perplexity items: summed negative log-likelihood...
    scored_tokens: int = 0  # ...over this many tokens, for the run's corpus perplexity

    @property
    def result(self) -> str | None:
        """pass, fail or error; None for a score that is neither (a perplexity)."""
        if self.error is not None:
            return "error"
        return None if self.passed is None else "pass" if self.passed else "fail"


@dataclass
class EvalRun:
    suite: str
    endpoint: str
    outcome: str = "complete"  # complete, partial (timeout or token cap), skipped (budget)
    items: list[ItemResult] = field(default_factory=list)
    duration: float = 0.0
    finished_unix: float = 0.0
    spent_usd: float = 0.0
    spent_tokens: int = 0
    advanced: int = 0  # items the next run skips: this run's, up to its first unfinished

    def scores(self) -> dict[str, float]:
        """Mean score per scorer over the items that got one; perplexity over the tokens of
        every reference text together (a corpus perplexity, as language-model papers give)."""
        values: dict[str, list[float]] = {}
        nll: dict[str, float] = {"perplexity": 0.0}
        tokens: dict[str, int] = {"perplexity": 0}
        for item in self.items:
            if item.error is not None or item.value is None:
                continue
            if item.scorer == "perplexity":
                nll[item.scorer] += item.nll
                tokens[item.scorer] += item.scored_tokens
            else:
                values.setdefault(item.scorer, []).append(item.value)
        out = {s: sum(v) / len(v) for s, v in values.items()}
        if tokens["perplexity"]:
            out["perplexity"] = math.exp(nll["perplexity"] / tokens["perplexity"])
        return out

    def counts(self) -> dict[str, int]:
        found = Counter(item.result for item in self.items if item.result is not None)
        return {r: found[r] for r in ("pass", "fail", "error")}

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "scores": self.scores(), "counts": self.counts()}


def pick(suite: EvalSuite, start: int) -> list[tuple[int, EvalItem]]:
    """``sample`` items from ``start``, wrapping: successive runs rotate through the file."""
    items = suite.loaded_items()
    if not items:
        return []
    return [((start + i) % len(items), items[(start + i) % len(items)])
            for i in range(min(suite.sample, len(items)))]


def resume_at(picked: list[int], finished: set[int]) -> int:
    """How many of a run's items the next run skips: up to the first unfinished one. An
    item cut short by the timeout is asked again, never skipped (items after it that did
    finish are asked again too: a rescore, not a gap)."""
    return next((n for n, index in enumerate(picked) if index not in finished), len(picked))


async def run_suite(client: httpx.AsyncClient, endpoint: EndpointConfig, suite: EvalSuite,
                    start: int, exhausted: Callable[[], bool] = lambda: False,
                    spend: Callable[[float, int], None] = lambda usd, tokens: None) -> EvalRun:
    """Run the items ``pick`` gives. ``exhausted`` says when the endpoint's budget is spent
    (no further item is sent); ``spend`` charges each item to it as it ends."""
    run = EvalRun(suite.name, endpoint.name)
    if exhausted():
        run.outcome, run.finished_unix = "skipped", time.time()
        return run
    picked = pick(suite, start)
    queue = iter(picked)
    began = time.monotonic()

    async def worker() -> None:
        for index, item in queue:
            if exhausted() or (suite.tokens_per_run and run.spent_tokens >= suite.tokens_per_run):
                run.outcome = "partial"
                return
            try:
                done, usd = await _item(client, endpoint, suite, index, item)
            except Exception as exc:  # an answer a scorer cannot judge (a bug): that item's
                log.warning("eval %s on %s: item %d could not be scored (%s)", suite.name,
                            endpoint.name, index, type(exc).__name__, exc_info=exc)
                done, usd = ItemResult(index, item.id, item.scorer_for(suite.scorer),
                                       error="protocol",
                                       detail=f"could not be scored ({type(exc).__name__})"), 0.0
            run.items.append(done)
            run.spent_usd += usd
            run.spent_tokens += done.tokens
            spend(usd, done.tokens)

    workers = [asyncio.create_task(worker()) for _ in range(suite.concurrency)]
    _, pending = await asyncio.wait(workers, timeout=suite.timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if pending:
        run.outcome = "partial"
    run.items.sort(key=lambda i: i.index)
    run.advanced = resume_at([index for index, _ in picked], {i.index for i in run.items})
    run.duration = time.monotonic() - began
    run.finished_unix = time.time()
    return run


async def _item(client: httpx.AsyncClient, endpoint: EndpointConfig, suite: EvalSuite,
                index: int, item: EvalItem) -> tuple[ItemResult, float]:
    scorer = item.scorer_for(suite.scorer)
    done = ItemResult(index, item.id, scorer)
    if scorer == "perplexity":
        found = await prompt_logprobs(client, endpoint, item.references()[0])
        done.error, done.detail, done.e2e, done.tokens = (found.error, found.detail,
                                                          found.seconds, found.tokens)
        if found.error is None:
            value = perplexity(found.logprobs)
            if value is None:
                done.error, done.detail = "protocol", "the server sent no usable logprobs"
            else:
                done.value = value
                done.scored_tokens = sum(1 for lp in found.logprobs if lp is not None)
                done.nll = math.log(value) * done.scored_tokens
        return done, found.cost_usd
    prompt = Prompt(name=suite.name, text=item.input or "",
                    max_tokens=item.max_tokens or suite.max_tokens)
    # No nonce: an eval asks the question as written (a cache hit changes no answer).
    result = await run_probe(client, endpoint, prompt, nonce=False)
    done.error, done.detail, done.e2e = result.error, result.detail, result.e2e
    done.tokens = (result.prompt_tokens or 0) + (result.output_tokens or 0)
    text = result.text
    done.answer = text if len(text) <= MAX_ANSWER else text[:MAX_ANSWER] + "…"
    if result.error is None:
        scored = score(item, text, suite.scorer, suite.pass_score)
        done.value, done.passed = scored.value, scored.passed
    return done, result.cost_usd
