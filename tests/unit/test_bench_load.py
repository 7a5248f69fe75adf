"""The load generator's statistics on fixed inputs, and its SSE client against in-memory servers."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from ops.bench import chat, load
from ops.bench.chat import Sample
from ops.bench.stats import percentile
from ops.bench.stub import StubApp
from ops.bench.target import Target

TARGET = Target("http://bench.test/v1", key="k")


def test_percentile_interpolates_linearly_between_ranks():
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 90) == pytest.approx(90.1)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([3.0, 1.0, 2.0], 0) == 1.0 and percentile([3.0, 1.0, 2.0], 100) == 3.0
    assert percentile([], 50) == 0.0


def test_distribution_is_in_milliseconds_and_ordered():
    dist = load.distribution([0.001 * v for v in (5, 1, 4, 2, 3, 100)])
    assert dist.count == 6
    assert dist.p50 == pytest.approx(3.5)
    assert dist.mean == pytest.approx(115 / 6)
    assert dist.p50 <= dist.p90 <= dist.p95 <= dist.p99 <= 100
    assert load.distribution([]) == load.Distribution(0, 0, 0, 0, 0, 0)


def test_inter_token_latency_is_every_gap_between_token_arrivals():
    assert load.inter_token_latencies((0.10, 0.15, 0.35, 0.40)) == pytest.approx([0.05, 0.20, 0.05])
    assert load.inter_token_latencies((0.2,)) == []
    assert load.inter_token_latencies(()) == []


def test_time_per_output_token_uses_usage_when_the_server_sent_it():
    sample = Sample(True, ttft_s=0.1, e2e_s=1.1, token_times_s=(0.1, 0.6, 1.1), usage_completion=11)
    assert load.time_per_output_token(sample) == pytest.approx(0.1)  # 1 s over 10 tokens after the first
    assert load.time_per_output_token(Sample(True, ttft_s=0.1, e2e_s=0.1, token_times_s=(0.1,))) is None


def _ok(ttft: float, gap: float, tokens: int, usage: int | None = None, warmup: bool = False) -> Sample:
    times = tuple(ttft + gap * i for i in range(tokens))
    return Sample(
        True, ttft_s=ttft, e2e_s=times[-1], token_times_s=times, usage_completion=usage, warmup=warmup
    )


def test_warm_up_requests_are_excluded_from_every_figure():
    slow_warmup = _ok(5.0, 1.0, 3, usage=3, warmup=True)
    failed_warmup = Sample(False, "HTTP 503", warmup=True)
    counted = [_ok(0.1, 0.01, 4, usage=4), _ok(0.3, 0.01, 4, usage=4)]
    level = load.summarise(2, [slow_warmup, failed_warmup, *counted], duration_s=2.0)
    assert load.measured([slow_warmup, *counted]) == counted
    assert level.requests == 2 and level.warmup_requests == 2
    assert level.error_rate == 0.0 and level.errors == {}
    assert level.ttft_ms.p99 == pytest.approx(298)  # the 5 s warm-up never shows
    assert level.output_tokens == 8 and level.tokens_counted == 8 and level.tokens_usage == 8
    assert level.requests_per_s == pytest.approx(1.0) and level.output_tokens_per_s == pytest.approx(4.0)
    assert level.itl_ms.count == 6 and level.itl_ms.p50 == pytest.approx(10)


def test_error_rate_counts_failures_among_measured_requests_only():
    samples = [
        Sample(False, "HTTP 401 invalid_api_key", warmup=True),
        _ok(0.1, 0.01, 2),
        Sample(False, "HTTP 404 model_not_found"),
        Sample(False, "ConnectError"),
        Sample(False, "HTTP 404 model_not_found"),
    ]
    assert load.error_rate(samples) == pytest.approx(0.75)
    level = load.summarise(1, samples, duration_s=1.0, cpu_s=0.25)
    assert (level.requests, level.succeeded, level.failed) == (4, 1, 3)
    assert level.errors == {"HTTP 404 model_not_found": 2, "ConnectError": 1}
    assert level.requests_per_s == pytest.approx(1.0)  # failures do not count as served requests
    assert level.client_cpu_percent == pytest.approx(25.0)
    assert load.error_rate([]) == 0.0


def test_tokens_fall_back_to_counted_chunks_without_usage():
    level = load.summarise(1, [_ok(0.1, 0.01, 3, usage=3), _ok(0.1, 0.01, 5)], duration_s=1.0)
    assert level.tokens_usage is None  # one request reported none: no total claims to be the server's
    assert level.tokens_counted == 8 and level.output_tokens == 8


def _sse(*events: dict | str) -> bytes:
    lines = [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events]
    return "".join(lines).encode()


def _stream(handler) -> Sample:
    async def go() -> Sample:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await chat.stream_chat(client, TARGET, load.body_for("m", 8), keep_text=True)

    return asyncio.run(go())


def test_stream_counts_content_chunks_and_takes_the_final_usage():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(json.loads(request.content), auth=request.headers["authorization"])
        body = _sse(
            {"choices": [{"delta": {"role": "assistant", "content": ""}}]},
            {"choices": [{"delta": {"content": "Hel"}}]},
            {"choices": [{"delta": {"content": "lo"}}]},
            {"choices": [{"delta": {}, "finish_reason": "stop"}]},
            {"choices": [], "usage": {"completion_tokens": 2, "prompt_tokens": 7}},
            "[DONE]",
        )
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    sample = _stream(handler)
    assert seen["stream"] is True and seen["stream_options"] == {"include_usage": True}
    assert seen["auth"] == "Bearer k"
    assert sample.ok and sample.chunks == 2 and sample.text == "Hello"
    assert (sample.usage_completion, sample.usage_prompt) == (2, 7)
    assert 0 < sample.ttft_s == sample.token_times_s[0] <= sample.token_times_s[1] <= sample.e2e_s


def test_http_errors_and_stream_error_events_are_failed_samples():
    def unauthorised(request):
        return httpx.Response(401, json={"error": {"message": "no", "code": "invalid_api_key"}})

    def error_event(request):
        return httpx.Response(200, content=_sse({"error": {"message": "upstream died"}}))

    def broken(request):
        raise httpx.ConnectError("refused")

    for handler, error in (
        (unauthorised, "HTTP 401 invalid_api_key"),
        (error_event, "stream error: upstream died"),
        (broken, "ConnectError"),
    ):
        sample = _stream(handler)
        assert (sample.ok, sample.error, sample.chunks) == (False, error, 0)


def test_run_excludes_one_warm_up_request_per_worker_and_reports_each_level():
    app = StubApp(models=("stub",), chunks=3, key="k")
    calls = []
    events = []

    class Counting(httpx.ASGITransport):
        async def handle_async_request(self, request):
            calls.append(request.url.path)
            return await super().handle_async_request(request)

    report = load.run(
        TARGET, "stub", [1, 3], 5, max_tokens=8, progress=events.append, transport=Counting(app)
    )
    assert len(calls) == (1 + 5) + (3 + 5)
    assert [lv.requests for lv in report.levels] == [5, 5]
    assert [lv.warmup_requests for lv in report.levels] == [1, 3]
    assert all(lv.error_rate == 0 and lv.tokens_counted == lv.tokens_usage == 15 for lv in report.levels)
    assert report.usage_source == "stream" and report.usage_check is None
    last = [e for e in events if e.concurrency == 3 and e.phase == "measure"][-1]
    assert (last.done, last.total, last.errors) == (5, 5, 0)


def test_run_with_a_wrong_key_reports_every_request_failed():
    app = StubApp(models=("stub",), key="right")
    report = load.run(TARGET, "stub", [2], 4, warmup=0, transport=httpx.ASGITransport(app))
    level = report.levels[0]
    assert level.error_rate == 1.0 and level.errors == {"HTTP 401 invalid_api_key": 4}
    assert level.warmup_requests == 0 and report.usage_source == "none"


def test_without_streamed_usage_a_non_streamed_request_is_compared():
    def handler(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content).get("stream"):
            return httpx.Response(200, content=_sse({"choices": [{"delta": {"content": "a b"}}]}, "[DONE]"))
        return httpx.Response(200, json={"usage": {"completion_tokens": 2}})

    report = load.run(TARGET, "m", [1], 2, transport=httpx.MockTransport(handler))
    assert report.usage_source == "non-stream check"
    assert report.usage_check == load.UsageCheck(stream_chunks=1, usage_tokens=2)
    assert not report.usage_check.matches
    assert any("1 content chunks carried 2 tokens" in note for note in report.notes)
    assert report.levels[0].tokens_usage is None and report.levels[0].output_tokens == 2


def test_concurrency_levels_are_parsed_or_refused():
    from ops.cli.bench import parse_levels
    from ops.errors import UsageError

    assert parse_levels("1,2,4,8") == [1, 2, 4, 8]
    assert parse_levels(" 3 ") == [3]
    for bad in ("", "0,1", "a,b", "1;2"):
        with pytest.raises(UsageError):
            parse_levels(bad)


def test_side_by_side_interleaves_levels_rotates_who_goes_first_and_compares_with_the_first_model():
    from ops.bench.side import comparison, run_side_by_side

    app = StubApp(models=("a", "b"), chunks=3, key="k")
    order = []

    class Recording(httpx.ASGITransport):
        async def handle_async_request(self, request):
            order.append(json.loads(request.content)["model"])
            return await super().handle_async_request(request)

    reports = run_side_by_side(TARGET, ["a", "b"], [1, 2, 3], 2, warmup=0, transport=Recording(app))
    assert [r.model for r in reports] == ["a", "b"]
    assert [[lv.concurrency for lv in r.levels] for r in reports] == [[1, 2, 3], [1, 2, 3]]
    # level 1: a then b; level 2: b then a; level 3: a then b (2 counted requests each)
    assert order == ["a", "a", "b", "b"] + ["b", "b", "a", "a"] + ["a", "a", "b", "b"]
    rows = comparison(reports)
    assert [(r.concurrency, r.model) for r in rows][:2] == [(1, "a"), (1, "b")]
    assert all(r.speedup > 0 for r in rows) and {r.speedup for r in rows if r.model == "a"} == {1.0}
