"""Evaluation suites: scorers, the eval run, and the suites llmmon ships (``suites/``)."""
