"""``ops bench``: a closed-loop load generator over an OpenAI-compatible chat endpoint.

At each concurrency level N, N workers send streamed chat completions back to back (closed loop,
one ``httpx.AsyncClient`` per worker, all on one event loop), after a warm-up phase whose requests
are not counted. It reports what ``vllm bench serve``, genai-perf and llmperf report: time to first token (TTFT),
inter-token latency (ITL, every gap between two content chunks), time per output token (TPOT, per
request), end-to-end latency (p50/p90/p95/p99 each), output tokens/s, requests/s and the error
rate, plus the CPU the generator itself used, so a run can tell when the client is the bottleneck.

Tokens are counted from the SSE content chunks; the usage of the final chunk
(``stream_options.include_usage``) is taken when the server sends it, else one streamed and one
non-streamed request are compared to say whether a chunk is a token. The statistics are pure
functions of :class:`Sample` lists, so they are unit-tested on fixed inputs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from ops.bench.chat import Sample, run_async, stream_chat
from ops.bench.stats import percentile
from ops.bench.target import Target

PERCENTILES = (50, 90, 95, 99)
DEFAULT_PROMPT = (
    "You are helping at a workshop on running language models on your own machine. "
    "Explain, in a few short paragraphs, what quantisation does to a model and why it helps."
)
# Above this share of one core the generator itself may be what limits the figures.
BUSY_CLIENT_PERCENT = 90.0


@dataclass(frozen=True)
class Distribution:
    """Percentiles and mean of one latency, in milliseconds (all 0 when there were no values)."""

    p50: float
    p90: float
    p95: float
    p99: float
    mean: float
    count: int


@dataclass(frozen=True)
class LevelResult:
    """The figures of one concurrency level (warm-up requests excluded)."""

    concurrency: int
    requests: int
    succeeded: int
    failed: int
    error_rate: float
    errors: dict[str, int]
    duration_s: float
    requests_per_s: float
    output_tokens: int
    tokens_counted: int
    tokens_usage: int | None
    output_tokens_per_s: float
    ttft_ms: Distribution
    itl_ms: Distribution
    tpot_ms: Distribution
    e2e_ms: Distribution
    warmup_requests: int
    client_cpu_s: float
    client_cpu_percent: float


@dataclass(frozen=True)
class UsageCheck:
    """Streamed content chunks against the usage of the same request not streamed."""

    stream_chunks: int
    usage_tokens: int

    @property
    def matches(self) -> bool:
        """True when one content chunk is one token."""
        return self.stream_chunks == self.usage_tokens


@dataclass(frozen=True)
class LoadReport:
    """Everything one ``ops bench`` run measured."""

    url: str
    stack: str | None
    model: str
    max_tokens: int
    requests_per_level: int
    warmup_per_level: int | None  # None: one per worker
    usage_source: str  # "stream" (include_usage honoured), "non-stream check" or "none"
    usage_check: UsageCheck | None
    levels: tuple[LevelResult, ...]
    started_at: str
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Progress:
    """Where a run is: ``done`` of ``total`` requests of the current level and phase."""

    concurrency: int
    phase: str  # "warm-up" or "measure"
    done: int
    total: int
    errors: int


def inter_token_latencies(token_times_s: tuple[float, ...] | list[float]) -> list[float]:
    """The gaps between consecutive token arrivals (seconds); none for fewer than two tokens."""
    return [later - earlier for earlier, later in zip(token_times_s, token_times_s[1:], strict=False)]


def time_per_output_token(sample: Sample) -> float | None:
    """(end to end - TTFT) / (tokens - 1), vLLM's TPOT; None below two tokens."""
    tokens = sample.output_tokens
    return (sample.e2e_s - sample.ttft_s) / (tokens - 1) if tokens > 1 else None


def distribution(values_s: list[float]) -> Distribution:
    """p50/p90/p95/p99 and mean of ``values_s`` (seconds), as milliseconds."""
    if not values_s:
        return Distribution(0.0, 0.0, 0.0, 0.0, 0.0, 0)
    p50, p90, p95, p99 = (percentile(values_s, p) * 1000 for p in PERCENTILES)
    return Distribution(p50, p90, p95, p99, sum(values_s) / len(values_s) * 1000, len(values_s))


def measured(samples: list[Sample]) -> list[Sample]:
    """The samples that count: every one that is not a warm-up request."""
    return [s for s in samples if not s.warmup]


def error_rate(samples: list[Sample]) -> float:
    """Failed over all measured requests (0 for none)."""
    counted = measured(samples)
    return sum(not s.ok for s in counted) / len(counted) if counted else 0.0


def summarise(concurrency: int, samples: list[Sample], duration_s: float, cpu_s: float = 0.0) -> LevelResult:
    """The figures of one level from its samples; ``duration_s`` is the measured phase's wall time."""
    counted = measured(samples)
    good = [s for s in counted if s.ok]
    usage = [s.usage_completion for s in good if s.usage_completion is not None]
    tokens = sum(s.output_tokens for s in good)
    rate = (lambda n: n / duration_s) if duration_s > 0 else (lambda n: 0.0)
    return LevelResult(
        concurrency=concurrency,
        requests=len(counted),
        succeeded=len(good),
        failed=len(counted) - len(good),
        error_rate=error_rate(samples),
        errors=dict(Counter(s.error for s in counted if not s.ok).most_common()),
        duration_s=duration_s,
        requests_per_s=rate(len(good)),
        output_tokens=tokens,
        tokens_counted=sum(s.chunks for s in good),
        tokens_usage=sum(usage) if good and len(usage) == len(good) else None,
        output_tokens_per_s=rate(tokens),
        ttft_ms=distribution([s.ttft_s for s in good if s.chunks]),
        itl_ms=distribution([gap for s in good for gap in inter_token_latencies(s.token_times_s)]),
        tpot_ms=distribution([t for s in good if (t := time_per_output_token(s)) is not None]),
        e2e_ms=distribution([s.e2e_s for s in good]),
        warmup_requests=len(samples) - len(counted),
        client_cpu_s=cpu_s,
        client_cpu_percent=cpu_s / duration_s * 100 if duration_s > 0 else 0.0,
    )


async def _phase(clients, target, body, workers, total, warmup, concurrency, progress) -> list[Sample]:
    """``total`` requests sent back to back by ``workers`` workers (closed loop), worker i on ``clients[i]``."""
    samples: list[Sample] = []
    taken = 0
    errors = 0
    phase = "warm-up" if warmup else "measure"

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal taken, errors
        # One event loop thread: taking a ticket needs no lock, there is no await in between.
        while taken < total:
            taken += 1
            sample = await stream_chat(client, target, body, warmup=warmup)
            samples.append(sample)
            errors += not sample.ok
            progress(Progress(concurrency, phase, len(samples), total, errors))

    await asyncio.gather(*(worker(clients[i]) for i in range(min(workers, total))))
    return samples


def body_for(model: str, max_tokens: int, prompt: str = DEFAULT_PROMPT) -> dict:
    """The chat completion every request of a run sends."""
    return {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens}


async def _run(
    target, body, levels, requests, warmup, timeout, progress, transport=None
) -> list[tuple[int, list, float, float]]:
    # One client per worker, each holding one keep-alive connection, all on one event loop. Not one
    # shared client: httpcore's pool rescans every connection (polling each idle socket) on each
    # request, so with 32 connections the generator spent ~1.8 ms of CPU per request instead of
    # ~0.5 ms and became the bottleneck (encode/httpcore#1035 describes that cost).
    timeouts = httpx.Timeout(timeout, connect=10)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    out = []
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(limits=limits, timeout=timeouts, transport=transport)
            )
            for _ in range(max(levels))
        ]
        for concurrency in levels:
            warm = concurrency if warmup is None else warmup
            warm_samples = await _phase(clients, target, body, concurrency, warm, True, concurrency, progress)
            cpu, started = time.process_time(), time.perf_counter()
            counted = await _phase(clients, target, body, concurrency, requests, False, concurrency, progress)
            duration, cpu = time.perf_counter() - started, time.process_time() - cpu
            out.append((concurrency, warm_samples + counted, duration, cpu))
    return out


def check_usage(
    target: Target, body: dict, timeout: float = 120, transport: httpx.AsyncBaseTransport | None = None
) -> UsageCheck | None:
    """Stream and then not stream the same greedy request; compare chunks with the reported usage."""
    greedy = {**body, "temperature": 0}

    async def both() -> UsageCheck | None:
        async with httpx.AsyncClient(timeout=timeout, transport=transport) as client:
            sample = await stream_chat(client, target, greedy)
            try:
                response = await client.post(
                    f"{target.url}/chat/completions", json=greedy, headers=target.headers
                )
                tokens = int(response.json()["usage"]["completion_tokens"])
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                return None
        return UsageCheck(sample.chunks, tokens) if sample.ok else None

    return run_async(both())


def run(
    target: Target,
    model: str,
    levels: list[int],
    requests: int,
    max_tokens: int = 128,
    warmup: int | None = None,
    timeout: float = 300.0,
    progress: Callable[[Progress], None] = lambda _: None,
    transport: httpx.AsyncBaseTransport | None = None,
    extra: dict | None = None,
) -> LoadReport:
    """Measure ``model`` at ``target`` at each concurrency level: ``requests`` counted per level.

    ``warmup`` requests (default: one per worker) run first at each level and are not counted.
    ``transport`` replaces the network (tests pass an in-memory one). ``extra`` fields go into
    every request's body (e.g. ``{"temperature": 0}`` for answers of the same length every time).
    """
    body = {**body_for(model, max_tokens), **(extra or {})}
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    results = run_async(_run(target, body, levels, requests, warmup, timeout, progress, transport))
    levels_out = tuple(summarise(c, samples, duration, cpu) for c, samples, duration, cpu in results)
    good = [s for _c, samples, _d, _cpu in results for s in measured(samples) if s.ok]
    notes: list[str] = []
    check = None
    if not good:
        source = "none"
    elif all(s.usage_completion is not None for s in good):
        source = "stream"
    else:
        source = "non-stream check"
        check = check_usage(target, body, transport=transport)
        if check is not None and not check.matches:
            notes.append(
                f"the server sent no usage while streaming, and {check.stream_chunks} content chunks "
                f"carried {check.usage_tokens} tokens: token figures count chunks"
            )
    for level in levels_out:
        if level.client_cpu_percent > BUSY_CLIENT_PERCENT:
            notes.append(
                f"at concurrency {level.concurrency} the generator used {level.client_cpu_percent:.0f}% "
                "of a core: it may be what limits the figures"
            )
    return LoadReport(
        url=target.url,
        stack=target.stack,
        model=model,
        max_tokens=max_tokens,
        requests_per_level=requests,
        warmup_per_level=warmup,
        usage_source=source,
        usage_check=check,
        levels=levels_out,
        started_at=started_at,
        notes=tuple(notes),
    )


def save(report: LoadReport, path: Path) -> Path:
    """Write ``report`` as JSON to ``path`` (parents created); return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")
    return path
