"""llmmon: a Prometheus exporter that probes LLM endpoints and samples the machines under them."""

__version__ = "0.3.0"
