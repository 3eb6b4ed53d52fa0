"""Families beyond a probe's latency and verdict: evaluation suites, the model a server says
it serves, its prefix cache, network against server time, and energy per token."""

from __future__ import annotations

from llmmon.config.evals import SCORERS
from llmmon.metrics.families import PROBE_LABELS
from llmmon.metrics.family import Family, Kind
from llmmon.probe.modelinfo import QUANTIZATIONS
from llmmon.probe.result import SERVER_PHASES

EVAL_RESULTS = ("pass", "fail", "error")  # error: no answer to score (a failed request)
EVAL_OUTCOMES = ("complete", "partial", "skipped")  # partial: the run's time or tokens ran out
CACHE_STATES = ("cold", "warm")
TTFT_SHARES = ("network", "server", "rest")
MODEL_SOURCES = ("server", "name", "none")  # where the size figures come from
__all__ = ["CACHE_STATES", "EVAL_OUTCOMES", "EVAL_RESULTS", "INSIGHT_FAMILIES", "MODEL_SOURCES",
           "QUANTIZATIONS", "SCORERS", "SERVER_PHASES", "TTFT_SHARES"]


def _family(name: str, kind: Kind, help: str, extra: tuple[str, ...] = (),
            group: str = "probe") -> Family:
    return Family(name, kind, help, PROBE_LABELS + extra, group=group)


def _eval(name: str, kind: Kind, help: str, extra: tuple[str, ...] = ()) -> Family:
    return _family(name, kind, help, ("suite", *extra), group="eval")


# --- evaluation suites -------------------------------------------------------------------
EVAL_SCORE = _eval("llmmon_eval_score", "gauge",
                   "Mean score of the suite's last run, per scorer (0 to 1; for `perplexity`, "
                   "the perplexity of the run's reference texts: lower is better).",
                   ("scorer",))
EVAL_ITEMS = _eval("llmmon_eval_last_run_items", "gauge",
                   "Items of the suite's last run by result (a graded scorer passes at the "
                   "suite's `pass_score`; `error`: the request failed, nothing to score).",
                   ("result",))
EVAL_ITEMS_TOTAL = _eval("llmmon_eval_items_total", "counter",
                         "Items scored over all runs, by result.", ("result",))
EVAL_RUNS = _eval("llmmon_eval_runs_total", "counter",
                  "Suite runs by outcome: complete, partial (its timeout or tokens_per_run cut "
                  "it short) or skipped (the endpoint's daily budget is spent).", ("outcome",))
EVAL_DURATION = _eval("llmmon_eval_duration_seconds", "gauge",
                      "Wall time of the suite's last run.")
EVAL_LAST = _eval("llmmon_eval_last_run_timestamp_seconds", "gauge",
                  "Unix time the suite's last run finished.")

# --- the model ---------------------------------------------------------------------------
MODEL_INFO = _family("llmmon_model_info", "gauge",
                     "Always 1: the served model's quantisation (a fixed vocabulary, `other` "
                     "or `unknown`) and where its size figures come from (`server`, the "
                     "model's `name`, or `none`).", ("quantization", "source"), "model")
MODEL_PARAMETERS = _family("llmmon_model_parameters", "gauge",
                           "Parameters of the served model, as the server (or, failing that, "
                           "the model's name) says.", group="model")
MODEL_SIZE = _family("llmmon_model_size_bytes", "gauge",
                     "Size of the model's weights as the server reports it (llama.cpp meta "
                     "size, Ollama /api/ps size).", group="model")
MODEL_VRAM = _family("llmmon_model_vram_bytes", "gauge",
                     "GPU memory the loaded model takes, as Ollama's /api/ps reports it.",
                     group="model")
MODEL_CONTEXT = _family("llmmon_model_context_length_tokens", "gauge",
                        "Tokens one request may hold as the model is served (vLLM "
                        "max_model_len, llama.cpp's slot n_ctx, Ollama's loaded context, TGI "
                        "max_total_tokens), else its trained window.", group="model")
MODEL_REFRESHED = _family("llmmon_model_info_timestamp_seconds", "gauge",
                          "Unix time the server last answered a model-information request.",
                          group="model")

# --- the prefix cache --------------------------------------------------------------------
CACHE_TTFT = _family("llmmon_cache_probe_ttft_seconds", "gauge",
                     "TTFT of the last successful cache probe's pair: `cold`, a prefix the "
                     "server cannot "
                     "have cached (a fresh nonce starts it), then `warm`, the same prefix "
                     "again.", ("cache",))
CACHE_RATIO = _family("llmmon_cache_probe_ttft_ratio", "gauge",
                      "Warm TTFT over cold TTFT of the last successful cache probe: well "
                      "below 1 when "
                      "the server's prefix cache works.")
CACHE_TOKENS = _family("llmmon_cache_probe_cached_tokens", "gauge",
                       "Prompt tokens the server said it read from its cache in the last "
                       "cache probe's requests (when its usage or timings say).", ("cache",))
CACHE_ERRORS = _family("llmmon_cache_probe_errors_total", "counter",
                       "Cache probes that failed, by the failed request's reason.",
                       ("reason",))

# --- network against server time ---------------------------------------------------------
NETWORK_RTT = _family("llmmon_probe_network_rtt_seconds", "gauge",
                      "The kernel's smoothed round-trip time (TCP_INFO tcpi_rtt) of the last "
                      "probe that measured one's connection: what the network adds, without "
                      "extra traffic.")
SERVER_TIME = _family("llmmon_probe_server_time_seconds", "gauge",
                      "The server's own timing of the last probe it sent one for "
                      "(llama.cpp timings, Ollama durations, TGI x-*-time headers, "
                      "openai-processing-ms, x-envoy-upstream-service-time).", ("phase",))
TTFT_SHARE = _family("llmmon_probe_ttft_share_seconds", "gauge",
                     "The last successful probe's TTFT split: `network` (one round trip), "
                     "`server` (its reported queue and prefill time) and `rest` (decoding "
                     "the first token, transport, what the server did not report).",
                     ("share",))

# --- energy ------------------------------------------------------------------------------
LOAD_ENERGY = _family("llmmon_load_energy_joules", "gauge",
                      "Last load probe: energy every GPU used during it (NVML's cumulative "
                      "counter read before and after), with the GPU sampler enabled.")
LOAD_JOULES_PER_TOKEN = _family("llmmon_load_energy_joules_per_output_token", "gauge",
                                "Last load probe: GPU energy over the output tokens it served.")
LOAD_TOKENS_PER_JOULE = _family("llmmon_load_output_tokens_per_joule", "gauge",
                                "Last load probe: output tokens served per joule of GPU energy.")

INSIGHT_FAMILIES: tuple[Family, ...] = (
    EVAL_SCORE, EVAL_ITEMS, EVAL_ITEMS_TOTAL, EVAL_RUNS, EVAL_DURATION, EVAL_LAST,
    MODEL_INFO, MODEL_PARAMETERS, MODEL_SIZE, MODEL_VRAM, MODEL_CONTEXT, MODEL_REFRESHED,
    CACHE_TTFT, CACHE_RATIO, CACHE_TOKENS, CACHE_ERRORS,
    NETWORK_RTT, SERVER_TIME, TTFT_SHARE,
    LOAD_ENERGY, LOAD_JOULES_PER_TOKEN, LOAD_TOKENS_PER_JOULE,
)
