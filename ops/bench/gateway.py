"""Benchmark: the same model through onnxruntime-genai in-process, Foundry's web service, and the gateway.

One run measures all three on one machine: output tokens/s and time to first token while
streaming, and the latency the gateway adds to each request (p50, p99), measured by
alternating identical tiny requests straight to Foundry and through the gateway.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from ops import paths
from ops.bench.host import throwaway_host
from ops.bench.stats import median, percentile
from ops.plan import StackPlan
from ops.runtime.inprocess import InProcessModel
from ops.stack import GATEWAY_KEY
from ops.state import StackState

PROMPT = [
    {"role": "user", "content": "Explain in detail why small language models suit on-device inference."}
]


@dataclass(frozen=True)
class PathFigures:
    """Streaming figures of one path (medians over the runs); tokens/s is end to end."""

    path: str
    tokens_per_s: float
    first_token_ms: float
    tokens: int
    runs: int


@dataclass(frozen=True)
class GatewayBench:
    """Everything one benchmark run measured."""

    model: str
    max_tokens: int
    paths: list[PathFigures]
    added_p50_ms: float
    added_p99_ms: float
    direct_p50_ms: float
    gateway_p50_ms: float
    latency_samples: int
    routing_added_p50_ms: float = 0.0
    routing_added_p99_ms: float = 0.0

    @property
    def kept_fraction(self) -> float:
        """Gateway streaming tokens/s as a fraction of Foundry's own."""
        by = {p.path: p for p in self.paths}
        return by["gateway"].tokens_per_s / by["foundry"].tokens_per_s if by["foundry"].tokens_per_s else 0.0

    @property
    def batching_fraction(self) -> float:
        """The batching engine's streaming tokens/s (one stream, direct) as a fraction of Foundry's."""
        by = {p.path: p for p in self.paths}
        return by["batching"].tokens_per_s / by["foundry"].tokens_per_s if by["foundry"].tokens_per_s else 0.0

    @property
    def first_token_added_ms(self) -> float:
        """How much later the first streamed token arrives through the gateway than from Foundry (medians)."""
        by = {p.path: p for p in self.paths}
        return by["gateway"].first_token_ms - by["foundry"].first_token_ms


def _stream(client: httpx.Client, url: str, headers: dict, body: dict) -> tuple[float, float, int]:
    """(first token s, total s, tokens) of one streamed chat completion; counts SSE content chunks."""
    started = time.perf_counter()
    first = 0.0
    tokens = 0
    with client.stream("POST", url, json={**body, "stream": True}, headers=headers) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[6:]).get("choices") or []
            if choices and (choices[0].get("delta") or {}).get("content"):
                tokens += 1
                if tokens == 1:
                    first = time.perf_counter() - started
    return first, time.perf_counter() - started, tokens


def _figures(name: str, samples: list[tuple[float, float, int]]) -> PathFigures:
    # End to end (tokens over the whole request): Foundry's stream starts late and then arrives in
    # bursts, so a rate measured after the first token would say more about buffering than speed.
    rates = [n / total for _first, total, n in samples if total > 0]
    return PathFigures(
        name, median(rates), median([s[0] for s in samples]) * 1000, samples[0][2], len(samples)
    )


def run(
    model_dir: Path | None = None,
    max_tokens: int = 256,
    runs: int = 5,
    latency_samples: int = 300,
    say: Callable[[str], None] = lambda _: None,
) -> GatewayBench:
    """Start a throw-away stack on ``model_dir`` (default: the bundled tiny model) and measure it."""
    model_dir = (model_dir or paths.bundled_model("tiny-fp32")).resolve()
    key = ""

    def read_key(_plan: StackPlan, state: StackState) -> None:
        nonlocal key
        key = state.secrets.get_or_create(GATEWAY_KEY).reveal()  # made by prepare_state

    with throwaway_host(
        "bench",
        lambda port: (
            # The same folder on both serving paths: m on Foundry's web service, b on the batching engine.
            f"name: bench\nmodels:\n  m: {{path: {model_dir}, serve: foundry}}\n"
            f"  b: {{path: {model_dir}, serve: batching}}\n"
            f"gateway: {{port: {port}, bind: [127.0.0.1], routing: {{models: {{auto: {{default: [m]}}}}}}}}\n"
        ),
        read_key,
        say,
        f"starting a model host on {model_dir.name}",
    ) as host:
        return _measure(model_dir, host.info.url, key, max_tokens, runs, latency_samples, say)


def _measure(model_dir, gateway_url, key, max_tokens, runs, latency_samples, say) -> GatewayBench:
    auth = {"authorization": f"Bearer {key}"}
    with httpx.Client(timeout=300) as client:
        card = client.get(f"{gateway_url}/v1/models/m", headers=auth).json()
        direct = card["upstream_url"] + "/chat/completions"
        engine = client.get(f"{gateway_url}/v1/models/b", headers=auth).json()
        via = f"{gateway_url}/v1/chat/completions"
        body = {"messages": PROMPT, "max_tokens": max_tokens, "temperature": 0}
        say(f"in-process onnxruntime-genai, {runs} runs of {max_tokens} tokens")
        local = InProcessModel(model_dir)
        local.generate(PROMPT, 8)  # warm-up
        gens = [local.generate(PROMPT, max_tokens) for _ in range(runs)]
        inproc = PathFigures(
            "onnxruntime-genai",
            median([g.tokens / g.total_s for g in gens]),
            median([g.first_token_s for g in gens]) * 1000,
            gens[0].tokens,
            runs,
        )
        del local
        figures = [inproc]
        # Foundry and the gateway take turns, run by run, so that whatever else the machine does
        # at a given moment weighs on both paths alike.
        targets: tuple[tuple[str, str, dict[str, str], str], ...] = (
            ("foundry", direct, {}, card["upstream_id"]),
            ("gateway", via, auth, "m"),
            ("batching", engine["upstream_url"] + "/chat/completions", {}, engine["upstream_id"]),
            ("gateway to batching", via, auth, "b"),
        )
        say(f"foundry, batching and the gateway to each, streaming, {runs} alternating runs each")
        samples: dict[str, list] = {name: [] for name, *_ in targets}
        for _name, url, headers, model in targets:  # a warm-up each
            _stream(client, url, headers, {**body, "model": model, "max_tokens": 8})
        for _ in range(runs):
            for name, url, headers, model in targets:
                samples[name].append(_stream(client, url, headers, {**body, "model": model}))
        figures += [_figures(name, samples[name]) for name, *_ in targets]
        say(f"added latency, {latency_samples} alternating requests")
        tiny = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1, "temperature": 0}
        direct_ms: list[float] = []
        gateway_ms: list[float] = []
        routed_ms: list[float] = []
        for i in range(latency_samples + 10):
            for target, headers, model, sink in (
                (direct, {}, card["upstream_id"], direct_ms),
                (via, auth, "m", gateway_ms),
                (via, auth, "auto", routed_ms),
            ):
                started = time.perf_counter()
                client.post(target, json={**tiny, "model": model}, headers=headers).raise_for_status()
                if i >= 10:  # the first ten warm connections and caches
                    sink.append((time.perf_counter() - started) * 1000)
    added = [g - d for g, d in zip(gateway_ms, direct_ms, strict=True)]
    routing = [r - g for r, g in zip(routed_ms, gateway_ms, strict=True)]
    return GatewayBench(
        model=model_dir.name,
        max_tokens=max_tokens,
        paths=figures,
        added_p50_ms=percentile(added, 50),
        added_p99_ms=percentile(added, 99),
        direct_p50_ms=percentile(direct_ms, 50),
        gateway_p50_ms=percentile(gateway_ms, 50),
        latency_samples=latency_samples,
        routing_added_p50_ms=percentile(routing, 50),
        routing_added_p99_ms=percentile(routing, 99),
    )
