"""Metric families and their exposition: ``family`` (what a family is), ``families`` (probe
and self-monitoring declarations), ``recorder`` (``Metrics``), ``snapshots`` (samplers'
readings), ``exposition`` (cached rendering), ``docs`` (docs/metrics.md)."""
