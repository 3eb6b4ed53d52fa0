"""The families llmmon records itself: probe results and its own health. Sampler families
are declared by their samplers (``samplers/<name>.py``)."""

from __future__ import annotations

from llmmon.metrics.family import Family, Kind

# Bucket bounds copied from vLLM's server-side histograms (vllm/v1/metrics) so that client
# and server views of the same model overlay on one dashboard panel.
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
                2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0,
               2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0,
               50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)
# Decode speed of one request: from CPU-served small models (a few tokens/s) to
# speculative decoding on large GPUs (thousands).
TOKENS_PER_SECOND_BUCKETS = (1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500,
                             1000, 2000, 5000)
# 1 is the normal case; more means a server or proxy coalesces tokens into one chunk.
TOKENS_PER_CHUNK_BUCKETS = (1, 1.5, 2, 3, 4, 6, 8, 16, 32, 64)

PROBE_LABELS = ("llm_endpoint", "provider", "model")
HTTP_PHASES = ("dns", "connect", "tls", "send", "wait")
SKIP_REASONS = ("budget", "retry_after")
CHECK_RESULTS = ("pass", "fail")
RATELIMIT_KINDS = ("requests", "tokens", "input_tokens", "output_tokens")
SLO_OBJECTIVES = ("availability", "ttft", "itl", "accuracy")
SLO_RESULTS = ("good", "bad", "starting")  # `starting` only for availability
SLO_THRESHOLDS = ("ttft", "itl")
# `quantile` is reserved for summaries; the load probe's TTFT percentiles are plain gauges.
LOAD_PERCENTILES = ("p50", "p99")

SCHEDULE_NOTE = "Measured by llmmon's synthetic probes on its own schedule, not from user traffic."


def _probe(name: str, kind: Kind, help: str, extra: tuple[str, ...] = (),
           buckets: tuple[float, ...] = ()) -> Family:
    return Family(name, kind, f"{help} {SCHEDULE_NOTE}", PROBE_LABELS + extra, buckets, "probe")


# --- probe families ----------------------------------------------------------------------
PROBE_SUCCESS = _probe("llmmon_probe_success", "gauge", "1 if the last probe succeeded, else 0.")
PROBE_REQUESTS = _probe("llmmon_probe_requests_total", "counter",
                        "Probes run, by outcome (success or an error reason).", ("outcome",))
PROBE_ERRORS = _probe("llmmon_probe_errors_total", "counter", "Failed probes by bounded reason.",
                      ("reason",))
PROBE_TTFT = _probe("llmmon_probe_time_to_first_token_seconds", "histogram",
                    "From the request's last byte sent to the first content token received. "
                    "Like every latency histogram, fed by successful probes only.",
                    buckets=TTFT_BUCKETS)
PROBE_ITL = _probe("llmmon_probe_inter_token_latency_seconds", "histogram",
                   "Every gap between consecutive streamed content chunks.", buckets=ITL_BUCKETS)
PROBE_TPOT = _probe("llmmon_probe_time_per_output_token_seconds", "histogram",
                    "Per probe, (e2e - ttft) / (output tokens - 1), as vLLM defines TPOT.",
                    buckets=ITL_BUCKETS)
PROBE_TOKENS_PER_CHUNK = _probe(
    "llmmon_probe_tokens_per_chunk", "histogram",
    "Per probe, output tokens divided by streamed content chunks; above 1 the server or a "
    "proxy coalesces tokens and chunk gaps are not token gaps.", buckets=TOKENS_PER_CHUNK_BUCKETS)
PROBE_COALESCED = _probe("llmmon_probe_chunks_coalesced", "gauge",
                         "1 when the last streamed probe averaged more than one token per chunk: "
                         "its inter-token latency observations are chunk gaps, not token gaps.")
PROBE_E2E = _probe("llmmon_probe_e2e_latency_seconds", "histogram",
                   "From the start of the request to the end of the response.",
                   buckets=E2E_BUCKETS)
PROBE_TOKENS_PER_SECOND = _probe("llmmon_probe_output_tokens_per_second", "histogram",
                                 "Per probe decode speed: (output tokens - 1) / (e2e - ttft).",
                                 buckets=TOKENS_PER_SECOND_BUCKETS)
PROBE_PROMPT_TOKENS = _probe("llmmon_probe_prompt_tokens_total", "counter",
                             "Prompt tokens sent, from the server's usage when reported.")
PROBE_CACHED_TOKENS = _probe("llmmon_probe_cached_prompt_tokens_total", "counter",
                             "Prompt tokens the server read from its prompt cache (OpenAI "
                             "cached_tokens, Anthropic cache_read_input_tokens), when reported.")
PROBE_OUTPUT_TOKENS = _probe("llmmon_probe_output_tokens_total", "counter",
                             "Output tokens received, from usage when reported, else counted.")
PROBE_PHASE = _probe("llmmon_probe_http_phase_seconds", "gauge",
                     "Duration of each HTTP phase of the last probe (0 when a pooled "
                     "connection was reused).", ("phase",))
PROBE_STATUS = _probe("llmmon_probe_http_status_code", "gauge",
                      "HTTP status of the last probe's response (0 when none arrived).")
PROBE_LAST_SUCCESS = _probe("llmmon_probe_last_success_timestamp_seconds", "gauge",
                            "Unix time of the last successful probe.")
PROBE_TTF_REASONING = _probe("llmmon_probe_time_to_first_reasoning_token_seconds", "histogram",
                             "Reasoning models only: to the first thinking token.",
                             buckets=TTFT_BUCKETS)
PROBE_TTF_ANSWER = _probe("llmmon_probe_time_to_first_answer_token_seconds", "histogram",
                          "Reasoning models only: to the first token of the answer proper.",
                          buckets=TTFT_BUCKETS)
PROBE_CHECKS = _probe("llmmon_probe_checks_total", "counter",
                      "Answer checks against the prompt's expectation.", ("prompt", "result"))
PROBE_COST = _probe("llmmon_probe_cost_usd_total", "counter",
                    "What the probes cost, from the configured prices per million tokens.")
PROBE_SKIPPED = _probe("llmmon_probe_skipped_total", "counter",
                       "Probes not sent: the daily budget is spent, or the server's Retry-After "
                       "has not passed.", ("reason",))
PROBE_RATELIMIT = _probe("llmmon_probe_ratelimit_remaining", "gauge",
                         "Remaining rate limit the server reported on the last probe.",
                         ("kind",))
PROBE_RETRY_AFTER = _probe("llmmon_probe_retry_after_seconds", "gauge",
                           "Retry-After of the last rate-limited probe (capped at an hour).")
SLO_EVENTS = _probe("llmmon_probe_slo_events_total", "counter",
                    "Probe events counted good or bad against the endpoint's own objective "
                    "(availability: the server answered; ttft: per successful probe; itl: per "
                    "token gap; accuracy: per checked answer). Failures before the endpoint's "
                    "first answer, within its start-up grace, are availability `starting`.",
                    ("objective", "result"))
SLO_OBJECTIVE = _probe("llmmon_probe_slo_objective_ratio", "gauge",
                       "The endpoint's configured objective: the share of events that must be "
                       "good.", ("objective",))
SLO_THRESHOLD = _probe("llmmon_probe_slo_threshold_seconds", "gauge",
                       "The endpoint's configured latency threshold of a good event.",
                       ("objective",))
PROBE_INTERVAL = _probe("llmmon_probe_interval_seconds", "gauge",
                        "The endpoint's configured probe interval: staleness and dashboard "
                        "windows scale with it.")
CONSECUTIVE_FAILURES = _probe("llmmon_probe_consecutive_failures", "gauge",
                              "Probes in a row the server did not answer (0 after one it did; "
                              "failures in the start-up grace not counted).")
STARTING = _probe("llmmon_probe_starting", "gauge",
                  "1 while the endpoint is in its start-up grace: no answer yet since llmmon "
                  "(or the endpoint) started, and `startup_grace` not yet over.")
BUDGET_SPENT_USD = _probe("llmmon_probe_budget_spent_usd", "gauge",
                          "Spent by this endpoint's probes during the current UTC day (the "
                          "budget's day), endpoints with a budget only.")
BUDGET_SPENT_TOKENS = _probe("llmmon_probe_budget_spent_tokens", "gauge",
                             "Tokens used by this endpoint's probes during the current UTC day, "
                             "endpoints with a budget only.")
PROBE_RATELIMIT_LIMIT = _probe("llmmon_probe_ratelimit_limit", "gauge",
                               "Rate limit the server announced on the last probe.", ("kind",))
BUDGET_USD = _probe("llmmon_probe_budget_daily_usd", "gauge", "Configured daily cost budget.")
BUDGET_TOKENS = _probe("llmmon_probe_budget_daily_tokens", "gauge",
                       "Configured daily token budget.")
LOAD_RPS = _probe("llmmon_load_requests_per_second", "gauge",
                  "Last load probe: successful requests per second of its wall time.")
LOAD_TPS = _probe("llmmon_load_output_tokens_per_second", "gauge",
                  "Last load probe: output tokens per second of its wall time, all streams.")
LOAD_CONCURRENCY = _probe("llmmon_load_concurrency", "gauge",
                          "Last load probe: the most requests in flight at once (between "
                          "their last byte sent and their answer), the concurrency reached.")
LOAD_ERRORS = _probe("llmmon_load_error_ratio", "gauge",
                     "Last load probe: share of its requests that failed.")
LOAD_ERROR_REASONS = _probe("llmmon_load_errors_total", "counter",
                            "Failed requests of load probes, by bounded reason.", ("reason",))
LOAD_TTFT = _probe("llmmon_load_time_to_first_token_seconds", "gauge",
                   "Last load probe: TTFT percentiles across its requests.", ("percentile",))
LOAD_DURATION = _probe("llmmon_load_duration_seconds", "gauge",
                       "Last load probe: wall time of the whole burst.")
LOAD_LAST = _probe("llmmon_load_last_run_timestamp_seconds", "gauge",
                   "Unix time the last load probe finished.")
ENDPOINT_INFO = Family("llmmon_endpoint_info", "gauge",
                       "Configured endpoints, always 1; identity in labels.",
                       (*PROBE_LABELS, "host"), group="probe")

# --- self-monitoring ---------------------------------------------------------------------
BUILD_INFO = Family("llmmon_build_info", "gauge", "Always 1; llmmon's version in labels.",
                    ("version", "python"))
SAMPLER_SUCCESS = Family("llmmon_sampler_success", "gauge",
                         "1 if the sampler's last run succeeded (no data is not a failure).",
                         ("sampler",))
SAMPLER_DURATION = Family("llmmon_sampler_duration_seconds", "gauge",
                          "Wall time of the sampler's last run.", ("sampler",))
MISSED_RUNS = Family("llmmon_scheduler_missed_runs_total", "counter",
                     "Scheduled runs skipped because the previous run of the job was still "
                     "going, or started too late.", ("task",))
JOB_ERRORS = Family("llmmon_scheduler_job_errors_total", "counter",
                    "Job runs that raised or hit their hard deadline (a bug or a hang, "
                    "never an endpoint error).", ("task",))
ASYNC_TASKS = Family("llmmon_asyncio_tasks", "gauge",
                     "asyncio tasks alive when /metrics was served (a leak grows this).")
THREADS = Family("llmmon_threads", "gauge", "Python threads alive when /metrics was served.")
RELOAD_OK = Family("llmmon_config_last_reload_successful", "gauge",
                   "1 if the last configuration load succeeded.")
RELOAD_TIME = Family("llmmon_config_last_reload_timestamp_seconds", "gauge",
                     "Unix time of the last configuration load attempt.")

# Only reasoning models feed these; pre-creating them for every endpoint would double the
# histogram series of endpoints that never will.
ON_DEMAND = (PROBE_TTF_REASONING, PROBE_TTF_ANSWER)

# In this order on /metrics.
PROBE_FAMILIES: tuple[Family, ...] = (
    PROBE_SUCCESS, PROBE_REQUESTS, PROBE_ERRORS, PROBE_TTFT, PROBE_ITL, PROBE_TPOT,
    PROBE_TOKENS_PER_CHUNK, PROBE_COALESCED, PROBE_E2E, PROBE_TOKENS_PER_SECOND,
    PROBE_PROMPT_TOKENS, PROBE_CACHED_TOKENS, PROBE_OUTPUT_TOKENS, PROBE_PHASE, PROBE_STATUS,
    PROBE_LAST_SUCCESS,
    PROBE_TTF_REASONING, PROBE_TTF_ANSWER, PROBE_CHECKS, PROBE_COST, PROBE_SKIPPED,
    SLO_EVENTS, SLO_OBJECTIVE, SLO_THRESHOLD, PROBE_INTERVAL, CONSECUTIVE_FAILURES, STARTING,
    PROBE_RATELIMIT, PROBE_RATELIMIT_LIMIT, PROBE_RETRY_AFTER, BUDGET_USD, BUDGET_TOKENS,
    BUDGET_SPENT_USD, BUDGET_SPENT_TOKENS, LOAD_RPS, LOAD_TPS,
    LOAD_CONCURRENCY, LOAD_ERRORS, LOAD_ERROR_REASONS, LOAD_TTFT, LOAD_DURATION, LOAD_LAST,
    ENDPOINT_INFO,
)
SELF_FAMILIES: tuple[Family, ...] = (
    BUILD_INFO, SAMPLER_SUCCESS, SAMPLER_DURATION, MISSED_RUNS, JOB_ERRORS, ASYNC_TASKS, THREADS,
    RELOAD_OK, RELOAD_TIME,
)
LIVE_FAMILIES = PROBE_FAMILIES + SELF_FAMILIES
