"""What every sampler's config has; each sampler module (``samplers/<name>.py``) extends it."""

from __future__ import annotations

from llmmon.config.types import Duration, StrictModel


class SamplerConfig(StrictModel):
    enabled: bool = True
    interval: Duration = 5.0

    def active(self) -> bool:
        """Whether the daemon should run this sampler at all."""
        return self.enabled
