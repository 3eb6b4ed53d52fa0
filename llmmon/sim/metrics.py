"""The simulator's own /metrics: a model server's gauges, named as vLLM names them (running,
waiting, KV cache), and the tokens it sent, which is what ``llmmon bench --server-metrics``
samples and what its throughput is checked against."""

from __future__ import annotations

from collections.abc import AsyncIterator

KV_SLOTS = 256  # requests in flight that would fill the simulated KV cache


def server_metrics(model: str, in_flight: int, tokens_sent: int) -> bytes:
    lines = [
        "# TYPE vllm:num_requests_running gauge",
        f'vllm:num_requests_running{{model_name="{model}"}} {in_flight}',
        "# TYPE vllm:num_requests_waiting gauge",
        f'vllm:num_requests_waiting{{model_name="{model}"}} 0',
        "# TYPE vllm:kv_cache_usage_perc gauge",
        f'vllm:kv_cache_usage_perc{{model_name="{model}"}} {min(1.0, in_flight / KV_SLOTS)}',
        "# TYPE llmmon_sim_tokens_sent_total counter",
        f"llmmon_sim_tokens_sent_total {tokens_sent}",
    ]
    return ("\n".join(lines) + "\n").encode()


class InFlight:
    """How many streams are being written: each is counted from its first byte to its end."""

    def __init__(self) -> None:
        self.count = 0

    async def wrap(self, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        self.count += 1
        try:
            async for chunk in stream:
                yield chunk
        finally:
            self.count -= 1
