"""Pure logic of verdicts on literal inputs: model names, redaction, error classification,
token accounting, cost with cached tokens, the latency rule, log lines on change."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry

from llmmon.config import Pricing
from llmmon.daemon.history import History, log_change, render
from llmmon.metrics.recorder import Metrics
from llmmon.probe.cost import cost_usd
from llmmon.probe.diagnose import MAX_DETAIL, model_matches, redact
from llmmon.probe.result import ProbeResult, apply_events
from llmmon.providers.anthropic import Anthropic
from llmmon.providers.base import (
    EndOfSequence,
    ProtocolError,
    ServerError,
    Usage,
    count,
    error_message,
    load_object,
)
from llmmon.providers.openai import OpenAI
from llmmon.providers.tgi import TGI
from tests.conftest import COUNT, make_endpoint, sample


@pytest.mark.parametrize(("configured", "served", "pattern", "same"), [
    ("gpt-4o-mini", "gpt-4o-mini", None, True),
    ("gpt-4o-mini", "GPT-4o-mini", None, True),
    ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", None, True),
    ("gpt-4o", "gpt-4o-mini-2024-07-18", None, False),  # another model, not a snapshot
    ("gpt-4", "gpt-4o", None, False),
    ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929", None, True),
    ("claude-3-5-sonnet-latest", "claude-3-5-sonnet-20241022", None, True),
    ("llama3.2", "llama3.2:latest", None, True),
    ("llama3", "llama3.1:latest", None, False),
    ("gemini-1.5-pro", "gemini-1.5-pro-001", None, True),
    ("gpt-4", "gpt-4-0613", None, True),
    ("gpt-4", "gpt-4-0125-preview", None, False),  # a preview is another model
    ("o1", "o1-preview", None, False),
    ("gpt-4o", "gpt-4o-v2_mini", None, False),
    ("llama3.2:latest", "llama3.2", None, True),
    ("llama3.2", "llama3.2:70b", None, False),  # another size
    ("qwen2.5", "qwen2.5:0.5b", None, False),
    ("claude-sonnet-4-0", "claude-sonnet-4-20250514", None, True),
    ("claude-opus-4-0", "claude-opus-4-20250514", None, True),
    ("anthropic.claude-3-sonnet-20240229", "anthropic.claude-3-sonnet-20240229-v1:0", None,
     True),
    ("llama-3.1", "llama-3.1-70b", None, False),  # a size is another model
    ("smollm2", "smollm2-360m", None, False),
    ("smol.gguf", "/srv/models/smol.gguf", None, True),
    ("/srv/models/smol.gguf", "smol.gguf", None, True),
    ("smol", "/srv/models/smol.gguf", None, True),
    ("smollm2", "/srv/models/SmolLM2-135M-Instruct.Q4_1.gguf", None, False),
    ("smollm2", "/srv/models/SmolLM2-135M-Instruct.Q4_1.gguf", r".*SmolLM2.*\.gguf", True),
    ("wanted", "real-model", None, False),
    ("wanted", "real-model", "real", False),  # a pattern must match the whole name
])
def test_model_matches(configured: str, served: str, pattern: str | None, same: bool) -> None:
    assert model_matches(configured, served, pattern) is same


@pytest.mark.parametrize(("text", "secrets", "gone"), [
    ("Incorrect API key provided: sk-abc123def456ghi", [], "abc123def456"),
    ("auth: Bearer eyJhbGciOiJIUzI1NiJ9.payload", [], "eyJhbGciOiJIUzI1NiJ9"),
    ('{"api_key": "hunter2hunter2"}', [], "hunter2"),
    ("token=abcd1234efgh&x=1", [], "abcd1234"),
    ("your key mykey-plain-000 is wrong", ["mykey-plain-000"], "mykey-plain"),
])
def test_redact_masks_credentials(text: str, secrets: list[str], gone: str) -> None:
    out = redact(text, secrets)
    assert gone not in out
    assert "****" in out


def test_redact_bounds_and_cleans() -> None:
    out = redact("a\x00b\x1b[31m " + "x" * 1000, [])
    assert len(out) == MAX_DETAIL
    assert "\x00" not in out
    assert "\x1b" not in out
    assert redact("plain words stay", []) == "plain words stay"


def test_redact_masks_a_key_before_cutting() -> None:
    """A key straddling the cut must not leave its head behind."""
    key = "zz-secret-value-0123456789"
    text = "x" * (MAX_DETAIL - 10) + key
    assert "zz-secret" not in redact(text, [key])


@pytest.mark.parametrize(("obj", "status"), [
    ({"error": {"message": "busy", "code": 503}}, 503),  # vLLM
    ({"error": {"message": "x", "code": "500"}}, 500),  # LiteLLM's string code
    ({"error": {"message": "x", "type": "invalid_request_error"}}, 400),
    ({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, 529),
    ({"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}, 429),
    ({"error": "Model is overloaded", "error_type": "overloaded"}, 429),  # TGI
    ({"error": "bad input", "error_type": "validation"}, 422),
    ({"error": "cuda", "error_type": "generation"}, 424),
    ({"error": "something"}, 500),  # Ollama: no type at all
    ({"error": {"message": "x", "code": 200}}, 500),  # not an error status: unknown
    ({"error": {"message": "x", "type": "tokens", "code": "rate_limit_exceeded"}}, 429),
])
def test_error_objects_are_classified_by_status(obj: dict[str, object], status: int) -> None:
    import json

    with pytest.raises(ServerError) as caught:
        load_object(json.dumps(obj))
    assert caught.value.status == status


def test_error_null_is_success_and_deep_json_is_protocol() -> None:
    assert load_object('{"error": null, "a": 1}') == {"error": None, "a": 1}
    with pytest.raises(ProtocolError):
        load_object("[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize(("body", "message"), [
    (b'{"error": {"message": "Invalid API key"}}', "Invalid API key"),
    (b'{"detail": "Not Found"}', "Not Found"),
    (b'{"message": "nope"}', "nope"),
    (b"<html>502</html>", "<html>502</html>"),
    (b"[1, 2]", "[1, 2]"),
])
def test_error_message_of_a_body(body: bytes, message: str) -> None:
    assert error_message(body) == message


@pytest.mark.parametrize(("value", "out"), [(5, 5), (0, 0), (-1, None), (5.0, None),
                                            (True, None), (10**9, 10**9), (10**9 + 1, None),
                                            (10**400, None), ("5", None)])
def test_token_counts_must_be_plausible(value: object, out: int | None) -> None:
    assert count(value) == out


def test_openai_cached_tokens_and_end_of_sequence() -> None:
    decoder = OpenAI.decoder()
    events = decoder.feed(
        b'data: {"model":"m","choices":[{"delta":{},"finish_reason":"stop"}]}\n\n'
        b'data: {"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":3,'
        b'"prompt_tokens_details":{"cached_tokens":8}}}\n\n')
    assert EndOfSequence() in events
    assert Usage(10, 3, 8) in events


def test_anthropic_prompt_tokens_include_the_cache() -> None:
    endpoint = make_endpoint("http://x", "anthropic")
    body = (b'{"model":"c","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":4,'
            b'"cache_read_input_tokens":100,"cache_creation_input_tokens":20,"output_tokens":2}}')
    usage = [e for e in Anthropic().parse_body(endpoint, body) if isinstance(e, Usage)]
    assert usage == [Usage(124, 2, 100, 20)]


def test_tgi_input_length_gives_prompt_tokens() -> None:
    decoder = TGI.decoder()
    events = decoder.feed(b'data:{"token":{"text":"</s>","special":true},"generated_text":"x",'
                          b'"details":{"generated_tokens":2,"input_length":9}}\n\n')
    assert events == [EndOfSequence(), Usage(9, 2)]


def test_cost_prices_cached_tokens_apart() -> None:
    pricing = Pricing(input_per_million=10, output_per_million=20,
                      cached_input_per_million=1, cache_write_per_million=15)
    # 100 prompt tokens: 60 read from cache, 10 written, 30 plain; 50 output
    assert cost_usd(pricing, 100, 50, 60, 10) == pytest.approx(
        (30 * 10 + 60 * 1 + 10 * 15 + 50 * 20) / 1e6)
    same = Pricing(input_per_million=10, output_per_million=20)
    assert cost_usd(same, 100, 50, 60, 10) == pytest.approx((100 * 10 + 50 * 20) / 1e6)


@pytest.mark.parametrize(("output", "chunks", "ends", "per_chunk"), [
    (4, 3, 1, 1.0),  # the end-of-sequence token counted but sent empty
    (3, 3, 1, 1.0),  # a server that does not count it
    (6, 3, 0, 2.0),  # real coalescing
    (7, 3, 1, 2.0),  # coalescing, plus the end token
])
def test_tokens_per_chunk(output: int, chunks: int, ends: int, per_chunk: float) -> None:
    result = ProbeResult("e", "p", output_tokens=output, tokens_from_usage=True,
                         content_chunks=chunks, end_chunks=ends)
    assert result.tokens_per_chunk == per_chunk


def test_end_of_sequence_counts_only_in_streams() -> None:
    result = ProbeResult("e", "p")
    apply_events(result, [EndOfSequence()], 0, None)
    assert result.end_chunks == 0


def test_failed_probes_feed_no_latency_histogram() -> None:
    """One rule: only successful probes are observed, however the bytes were split."""
    metrics = Metrics(CollectorRegistry())
    labels = ("e", "openai", "m")
    metrics.add_endpoint(labels, "h", [])
    failed = ProbeResult("e", "p", error="check_failed", ttft=0.1, e2e=0.5, itl=[0.01, 0.02],
                         output_tokens=3, tokens_from_usage=True, content_chunks=3)
    metrics.record_probe(labels, failed)
    text = metrics.exposition(False).decode()
    for family in ("time_to_first_token_seconds", "inter_token_latency_seconds",
                   "e2e_latency_seconds", "time_per_output_token_seconds"):
        assert sample(text, f"llmmon_probe_{family}_count", llm_endpoint="e") == 0, family
    assert sample(text, "llmmon_probe_success", llm_endpoint="e") == 0
    metrics.record_probe(labels, ProbeResult("e", "p", ttft=0.1, e2e=0.5, itl=[0.01, 0.02],
                                             output_tokens=3))
    text = metrics.exposition(False).decode()
    assert sample(text, "llmmon_probe_time_to_first_token_seconds_count", llm_endpoint="e") == 1
    assert sample(text, "llmmon_probe_inter_token_latency_seconds_count", llm_endpoint="e") == 2


def test_outcome_changes_are_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.verdicts")
    ok = ProbeResult("e", "p")
    bad = ProbeResult("e", "p", error="http_4xx", detail="401: Invalid API key",
                      hint="the key was rejected")
    with caplog.at_level(logging.INFO, logger="test.verdicts"):
        log_change(log, "e", None, ok)  # the first success: nothing to say
        log_change(log, "e", ok, bad)
        log_change(log, "e", bad, bad)  # unchanged: silent
        log_change(log, "e", bad, ok)
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]
    assert "Invalid API key" in caplog.records[0].getMessage()
    assert "the key was rejected" in caplog.records[0].getMessage()


def test_history_is_bounded_and_truncates_answers() -> None:
    endpoint = make_endpoint("http://x/v1")
    history = History(3)
    for i in range(5):
        history.add(endpoint, COUNT, ProbeResult("t", "count", text=f"{i}" + "y" * 2000,
                                                 finished_unix=1.0))
    entries = list(history.entries)
    assert [e["answer"][0] for e in entries] == ["2", "3", "4"]
    assert all(len(e["answer"]) <= 501 for e in entries)
    assert "Last 3 probes of endpoint t" in render("t", entries, as_json=False)
    assert History(0).entries.maxlen == 0
    history.resize(2)  # a reload changed probe_history: the newest are kept
    assert [e["answer"][0] for e in history.entries] == ["3", "4"]


def test_every_reason_and_result_field_is_documented() -> None:
    from llmmon.metrics.docs import RESULT_FIELDS
    from llmmon.probe.result import ERROR_REASONS, REASON_MEANINGS

    assert set(REASON_MEANINGS) == set(ERROR_REASONS)
    fields = set(ProbeResult("e", "p").as_dict()) - {"finished_unix"}
    assert fields == set(RESULT_FIELDS)
