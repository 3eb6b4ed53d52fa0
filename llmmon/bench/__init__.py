"""`llmmon bench` and `llmmon compare`: load sweeps, A/B comparisons and their reports."""
