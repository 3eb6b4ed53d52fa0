"""What probes cost, and the daily budget that stops them before they cost too much."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from llmmon.config import Budget, Pricing


def cost_usd(pricing: Pricing | None, prompt_tokens: int | None, output_tokens: int | None,
             cached_tokens: int | None = None, cache_write_tokens: int | None = None) -> float:
    """Dollars for one request. ``prompt_tokens`` include the cached ones (read from a prompt
    cache, or written to it), which cost their own prices when given. Without usage from the
    server prompt tokens are unknown, and the cost covers the counted output tokens only."""
    if pricing is None:
        return 0.0
    read, written = cached_tokens or 0, cache_write_tokens or 0
    plain = max(0, (prompt_tokens or 0) - read - written)
    read_price = pricing.input_per_million if pricing.cached_input_per_million is None \
        else pricing.cached_input_per_million
    write_price = pricing.input_per_million if pricing.cache_write_per_million is None \
        else pricing.cache_write_per_million
    return (plain * pricing.input_per_million + read * read_price + written * write_price
            + (output_tokens or 0) * pricing.output_per_million) / 1e6


class DailySpend:
    """Tokens and dollars spent by one endpoint's probes during the current UTC day.

    ``clock`` gives the current time (aware, UTC); injected so tests can cross midnight."""

    def __init__(self, budget: Budget | None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.budget = budget
        self.clock = clock
        self.day: date | None = None
        self.usd = 0.0
        self.tokens = 0

    def _roll(self) -> None:
        today = self.clock().date()
        if today != self.day:
            self.day, self.usd, self.tokens = today, 0.0, 0

    def add(self, usd: float, tokens: int) -> None:
        self._roll()
        self.usd += usd
        self.tokens += tokens

    def today(self) -> tuple[float, int]:
        """Dollars and tokens spent so far this UTC day."""
        self._roll()
        return self.usd, self.tokens

    def exhausted(self) -> bool:
        self._roll()
        if self.budget is None:
            return False
        over_usd = self.budget.daily_usd is not None and self.usd >= self.budget.daily_usd
        over_tokens = (self.budget.daily_tokens is not None
                       and self.tokens >= self.budget.daily_tokens)
        return over_usd or over_tokens
