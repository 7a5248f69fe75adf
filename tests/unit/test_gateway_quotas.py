"""Token quotas per participant per sliding hour, seeded from the meter; what the gateway measures
for the meter (tokens from the answers' usage, streamed or not; first token; gaps; who; status)."""

from __future__ import annotations

import asyncio
import json

import pytest

from ops.gateway.errors import GatewayError
from ops.gateway.quotas import HOUR, Quotas

from .gatewayfakes import KEY, Call, FakeParticipants, FakeUpstream, RecordingMeter, bearer, make_app

ANN, BOB = "ann-key-0001", "bob-key-0002"
CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "Hello, how are you today?"}]}


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_participant_at_the_quota_gets_429_with_the_seconds_until_enough_expires():
    clock = Clock()
    quotas = Quotas(100, clock=clock)
    quotas.add("participant:ann", clock.now - 1000, 60)
    quotas.add("participant:ann", clock.now - 10, 30)
    quotas.check("participant:ann")  # 90 of 100: still answered
    quotas.add("participant:ann", clock.now, 10)
    with pytest.raises(GatewayError) as caught:
        quotas.check("participant:ann")
    error = caught.value
    assert error.status == 429 and error.code == "quota_exceeded"
    assert "100 tokens an hour" in error.message and "'ann'" in error.message
    # The first 60 tokens leave the window 3600 - 1000 s from now; then 40 of 100 are used.
    assert error.headers["retry-after"] == str(int(HOUR - 1000))
    clock.now += HOUR - 1000
    quotas.check("participant:ann")
    assert quotas.usage("participant:ann") == 40


def test_requests_that_end_out_of_order_leave_the_window_in_arrival_order():
    """A long answer that arrived first is added last: it still leaves the window first."""
    clock = Clock()
    quotas = Quotas(100, clock=clock)
    quotas.add("participant:ann", clock.now - 10, 50)  # a short answer, ended first
    quotas.add("participant:ann", clock.now - 60, 50)  # a long one that arrived before it
    with pytest.raises(GatewayError) as caught:
        quotas.check("participant:ann")
    assert caught.value.headers["retry-after"] == str(int(HOUR - 60))
    clock.now += HOUR - 59  # the long one has left the window, the short one not yet
    assert quotas.usage("participant:ann") == 50
    quotas.check("participant:ann")


def test_only_participants_have_quotas_and_none_without_a_limit():
    quotas = Quotas(10)
    quotas.add("service:chat", 0, 1000)
    quotas.add("admin", 0, 1000)
    quotas.check("service:chat")
    quotas.check("admin")
    unlimited = Quotas(None)
    unlimited.add("participant:ann", 0, 10**9)
    unlimited.check("participant:ann")


def test_windows_are_seeded_from_what_the_meter_recorded():
    clock = Clock()
    seed = {"participant:ann": [(clock.now - 100, 500)], "participant:bob": [(clock.now - 4000, 500)]}
    quotas = Quotas(500, seed, clock=clock)
    with pytest.raises(GatewayError):
        quotas.check("participant:ann")
    quotas.check("participant:bob")  # that hour is over


def _run(app, calls):
    async def go():
        return [await Call(app, path, body, headers).done() for path, body, headers in calls]

    return asyncio.run(go())


def test_over_quota_through_the_gateway_and_the_other_participant_still_answered():
    meter = RecordingMeter()
    participants = FakeParticipants(keys={"ann": ANN, "bob": BOB})
    upstream = FakeUpstream(words=("a", "b", "c"), prompt_tokens=7)  # 10 tokens a request
    app = make_app(upstream, meter=meter, participants=participants, tokens_per_hour=20)
    path = "/v1/chat/completions"
    answers = _run(app, [(path, CHAT, bearer(ANN))] * 3 + [(path, CHAT, bearer(BOB))])
    assert [a.status for a in answers] == [200, 200, 429, 200]
    refused = answers[2]
    assert refused.json()["error"]["code"] == "quota_exceeded"
    assert 3590 <= int(refused.headers["retry-after"]) <= 3600
    assert [(r.caller, r.status) for r in meter.records][2] == ("participant:ann", 429)
    assert len(upstream.bodies) == 3, "the refused request never reached the model"


def test_the_restarted_gateway_remembers_the_hour_from_the_meter():
    import time

    meter = RecordingMeter(seed={"participant:ann": [(time.time() - 60, 25)]})
    app = make_app(
        FakeUpstream(), meter=meter, participants=FakeParticipants(keys={"ann": ANN}), tokens_per_hour=20
    )
    assert meter.asked_since is not None and time.time() - 3700 < meter.asked_since < time.time() - 3500
    (answer,) = _run(app, [("/v1/chat/completions", CHAT, bearer(ANN))])
    assert answer.status == 429


def test_a_whole_answer_is_recorded_with_its_usage():
    meter = RecordingMeter()
    app = make_app(FakeUpstream(words=("x", "y"), prompt_tokens=9), meter=meter)
    (answer,) = _run(app, [("/v1/chat/completions", CHAT, bearer(KEY))])
    usage = answer.json()["usage"]
    (record,) = meter.records
    assert (
        (record.prompt_tokens, record.completion_tokens)
        == (usage["prompt_tokens"], usage["completion_tokens"])
        == (9, 2)
    )
    assert (
        record.model == "tiny" and record.status == 200 and record.task == "chat" and record.caller == "admin"
    )
    assert record.ttft is not None and record.duration >= record.ttft and record.queued == 0


def _events(body: bytes) -> list[dict]:
    return [json.loads(line[6:]) for line in body.decode().split("\n\n") if line.startswith("data: {")]


def test_a_stream_asks_for_usage_and_drops_it_unless_the_client_asked():
    meter = RecordingMeter()
    upstream = FakeUpstream(words=("one", " two", " three"), prompt_tokens=5)
    app = make_app(upstream, meter=meter)
    path = "/v1/chat/completions"
    plain, asked = _run(
        app,
        [
            (path, {**CHAT, "stream": True}, bearer(KEY)),
            (path, {**CHAT, "stream": True, "stream_options": {"include_usage": True}}, bearer(KEY)),
        ],
    )
    assert all(b["stream_options"] == {"include_usage": True} for b in upstream.bodies), "asked upstream"
    assert not any("usage" in e for e in _events(plain.body)), "the client did not ask: not sent"
    assert plain.body.endswith(b"data: [DONE]\n\n")
    assert _events(asked.body)[-1]["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    for record in meter.records:
        assert (record.prompt_tokens, record.completion_tokens, record.status) == (5, 3, 200)
        assert record.ttft is not None and record.ttft <= record.duration
    assert [m for m, _ in meter.gaps] == ["tiny"] * 4, "two gaps between three tokens, per answer"


def test_an_upstream_without_usage_is_counted_from_the_stream():
    meter = RecordingMeter()
    upstream = FakeUpstream(words=("a", "b", "c", "d"))
    upstream.usage = False
    app = make_app(upstream, meter=meter)
    _run(app, [("/v1/chat/completions", {**CHAT, "stream": True}, bearer(KEY))])
    (record,) = meter.records
    assert record.completion_tokens == 4, "one token a content chunk"
    assert record.prompt_tokens == len(CHAT["messages"][0]["content"]) // 4 + 1


def test_embeddings_are_recorded_too():
    meter = RecordingMeter()
    app = make_app(FakeUpstream(), meter=meter)
    _run(app, [("/v1/embeddings", {"model": "emb", "input": "hello"}, bearer(KEY))])
    (record,) = meter.records
    assert (record.task, record.model, record.prompt_tokens, record.completion_tokens) == (
        "embeddings",
        "emb",
        4,
        0,
    )


def test_refusals_after_the_key_check_are_recorded_with_their_status():
    meter = RecordingMeter()
    app = make_app(FakeUpstream(), meter=meter)
    _run(
        app,
        [
            ("/v1/chat/completions", {**CHAT, "model": "nope"}, bearer(KEY)),
            ("/v1/chat/completions", {"model": "tiny", "messages": "x"}, bearer(KEY)),
        ],
    )
    assert [(r.model, r.status) for r in meter.records] == [("nope", 404), ("tiny", 400)]


def test_a_failing_meter_does_not_fail_the_answer():
    class Broken(RecordingMeter):
        def record(self, usage):
            raise RuntimeError("disk full")

    app = make_app(FakeUpstream(), meter=Broken())
    (answer,) = _run(app, [("/v1/chat/completions", CHAT, bearer(KEY))])
    assert answer.status == 200
