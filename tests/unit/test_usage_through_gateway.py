"""The gateway's meter for real: what the gateway answers is what ``ops usage`` counts, across a restart."""

from __future__ import annotations

import asyncio
import json

from prometheus_client.parser import text_string_to_metric_families

from ops.metering.meter import GatewayMeter
from ops.metering.report import build
from ops.state import StackState

from .gatewayfakes import KEY, Call, FakeParticipants, FakeUpstream, bearer, make_app

PARTICIPANTS = FakeParticipants(keys={"ann": "key-of-ann-0123456789", "bob": "key-of-bob-0123456789"})
CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}]}


def answered_usage(call: Call) -> tuple[int, int]:
    """Prompt and completion tokens the client was told (the non-streamed body, or the usage chunk)."""
    if call.status != 200:
        return 0, 0
    if not call.body.startswith(b"data:"):
        usage = call.json()["usage"]
        return usage["prompt_tokens"], usage["completion_tokens"]
    for line in call.body.split(b"\n"):
        if line.startswith(b"data: {") and b'"usage":{' in line:
            usage = json.loads(line[6:])["usage"]
            return usage["prompt_tokens"], usage["completion_tokens"]
    return 0, 0


def chats(app, rounds: int) -> list[Call]:
    async def run() -> list[Call]:
        calls = []
        for i in range(rounds):
            for key in PARTICIPANTS.keys.values():
                body = {**CHAT, "stream": i % 2 == 0}
                if body["stream"]:
                    body["stream_options"] = {"include_usage": True}
                calls.append(await Call(app, "/v1/chat/completions", body, bearer(key)).done())
        return calls

    return asyncio.run(run())


def test_usage_totals_equal_the_answers_and_survive_a_restart():
    state = StackState.for_stack("metered-gateway")
    upstream = FakeUpstream(words=("Hello", " there", "!"), prompt_tokens=11)
    meter = GatewayMeter(state, models=("tiny", "emb"))
    calls = chats(make_app(upstream, meter=meter, participants=PARTICIPANTS, tokens_per_hour=40), rounds=5)
    meter.close()  # the host stops
    assert sorted({c.status for c in calls}) == [200, 429]  # 40 tokens an hour, 14 a request: 3 answered each
    prompt = sum(answered_usage(c)[0] for c in calls)
    completion = sum(answered_usage(c)[1] for c in calls)
    assert (prompt, completion) == (6 * 11, 6 * 3)

    meter = GatewayMeter(state, models=("tiny", "emb"))  # the host starts again
    try:
        result = build(meter.store, "metered-gateway", {})
        assert (result.total.requests, result.total.refused) == (10, 4)
        assert (result.total.prompt_tokens, result.total.completion_tokens) == (prompt, completion)
        assert {r.name: r.requests for r in result.callers} == {"participant:ann": 5, "participant:bob": 5}
        # The restarted gateway's quota windows come from the file: ann is still over her hour.
        app = make_app(upstream, meter=meter, participants=PARTICIPANTS, tokens_per_hour=40)

        async def ask() -> Call:
            return await Call(app, "/v1/chat/completions", CHAT, bearer(PARTICIPANTS.keys["ann"])).done()

        assert asyncio.run(ask()).status == 429
    finally:
        meter.close()


def test_the_meter_counts_for_prometheus_what_the_gateway_answered():
    meter = GatewayMeter(StackState.for_stack("metered-metrics"), models=("tiny", "emb"))
    try:
        calls = chats(make_app(FakeUpstream(), meter=meter, participants=PARTICIPANTS), rounds=2)
        body, _ = meter.render()
    finally:
        meter.close()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    assert samples[("ops_gateway_requests_total", (("model", "tiny"), ("status", "200")))] == len(calls) == 4
    completion = sum(answered_usage(c)[1] for c in calls)
    assert samples[("ops_gateway_tokens_total", (("kind", "completion"), ("model", "tiny")))] == completion
    assert (
        samples[("ops_gateway_participant_requests_total", (("participant", "ann"), ("status_class", "2xx")))]
        == 2
    )
    assert samples[("ops_gateway_ttft_seconds_count", (("model", "tiny"),))] == 4
    assert samples[("ops_gateway_inter_token_seconds_count", (("model", "tiny"),))] > 0


def test_metrics_route_answers_openmetrics_to_a_scraper_that_asks():
    """(The route's keys are test_gateway_metering's.)"""
    meter = GatewayMeter(StackState.for_stack("metered-route"), models=("tiny", "emb"))
    app = make_app(FakeUpstream(), meter=meter)

    async def get(accept: str) -> Call:
        return await Call(app, "/metrics", None, {**bearer(KEY), "Accept": accept}).done()

    async def run() -> tuple[Call, Call]:
        return await get("application/openmetrics-text; version=1.0.0"), await get("*/*")

    try:
        openmetrics, plain = asyncio.run(run())
    finally:
        meter.close()
    assert openmetrics.status == 200 and openmetrics.body.endswith(b"# EOF\n")
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert plain.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
