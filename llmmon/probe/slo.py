"""Each probe counted good or bad against its endpoint's objectives, so that burn-rate rules
need no per-endpoint thresholds (as Sloth and Pyrra generate them), and the start-up grace
that keeps a model still loading its weights from paging as "down"."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from llmmon.config.endpoints import SLO
from llmmon.probe.result import ProbeResult

# The server answered, but not as it should: users were served, badly. Availability good,
# accuracy bad; an accuracy alert, not "endpoint down".
ANSWERED_WRONGLY = ("check_failed", "wrong_model")

SLOEvents = Counter[tuple[str, str]]  # (objective, result) -> events


def answered(result: ProbeResult) -> bool:
    return result.error is None or result.error in ANSWERED_WRONGLY


def slo_events(result: ProbeResult, slo: SLO, starting: bool) -> SLOEvents:
    """The events one probe adds. Latency counts only probes that served a user, like the
    latency histograms; ITL counts every gap, as the ITL histogram does."""
    events: SLOEvents = Counter()
    if answered(result):
        events["availability", "good"] += 1
    else:
        events["availability", "starting" if starting else "bad"] += 1
    if result.ok and result.ttft is not None:
        events["ttft", "good" if result.ttft <= slo.ttft else "bad"] += 1
    if result.ok:
        for gap in result.itl:
            events["itl", "good" if gap <= slo.itl else "bad"] += 1
    if result.check_passed is not None:
        events["accuracy", "good" if result.check_passed else "bad"] += 1
    elif result.error == "wrong_model":
        events["accuracy", "bad"] += 1
    return events


@dataclass
class SLOState:
    """One endpoint's start-up grace and run of failures. ``started`` is monotonic time."""

    started: float
    grace: float
    answered: bool = False  # once since llmmon (or this endpoint) started
    consecutive_failures: int = 0

    def starting(self, now: float) -> bool:
        return not self.answered and now - self.started < self.grace

    def record(self, result: ProbeResult, slo: SLO, now: float) -> SLOEvents:
        """Fold one probe in; its SLO events."""
        starting = self.starting(now)
        if answered(result):
            self.answered, self.consecutive_failures = True, 0
        elif not starting:
            self.consecutive_failures += 1
        return slo_events(result, slo, starting)
