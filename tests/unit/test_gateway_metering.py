"""The gateway with the stack's real meter: usage kept in the store survives a restart (the quota
windows start from it), and /metrics serves Prometheus' text format behind the stack key."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from ops.metering.meter import GatewayMeter
from ops.settings import Settings
from ops.state import StackState

from .gatewayfakes import KEY, Call, FakeParticipants, FakeUpstream, bearer, make_app

ANN = "ann-key-0001"
CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}]}


def _state(tmp_path) -> StackState:
    return StackState.for_stack("demo", Settings.from_env({"OPS_HOME": str(tmp_path)})).ensure()


def _run(app, calls):
    async def go():
        return [await Call(app, path, body, headers).done() for path, body, headers in calls]

    return asyncio.run(go())


def test_usage_kept_in_the_store_equals_the_answers_and_survives_a_restart(tmp_path):
    state = _state(tmp_path)
    participants = FakeParticipants(keys={"ann": ANN})
    meter = GatewayMeter(state, models=("tiny",))
    app = make_app(
        FakeUpstream(words=("a", "b", "c"), prompt_tokens=6),
        meter=meter,
        participants=participants,
        tokens_per_hour=25,
    )
    answers = _run(
        app,
        [
            ("/v1/chat/completions", CHAT, bearer(ANN)),
            (
                "/v1/chat/completions",
                {**CHAT, "stream": True, "stream_options": {"include_usage": True}},
                bearer(ANN),
            ),
        ],
    )
    assert [a.status for a in answers] == [200, 200]
    meter.close()
    # Restarted: a new gateway on the same state finds ann's 18 tokens of this hour.
    again = GatewayMeter(state, models=("tiny",))
    windows = again.tokens_since(0)
    assert [t for _, t in windows["participant:ann"]] == [9, 9], "6 prompt + 3 answer tokens, twice"
    app = make_app(
        FakeUpstream(words=("a", "b", "c"), prompt_tokens=6),
        meter=again,
        participants=participants,
        tokens_per_hour=25,
    )
    ok, refused = _run(app, [("/v1/chat/completions", CHAT, bearer(ANN))] * 2)
    assert ok.status == 200 and refused.status == 429, "18 + 9 = 27 of 25 tokens: the next is refused"
    again.close()


def test_metrics_for_the_stack_key_only(tmp_path):
    meter = GatewayMeter(_state(tmp_path), models=("tiny",))
    app = make_app(
        FakeUpstream(),
        meter=meter,
        participants=FakeParticipants(keys={"ann": ANN}),
        services={"chat": "svc-key"},
    )
    _run(app, [("/v1/chat/completions", CHAT, bearer(KEY))] * 3)

    async def get(headers):
        return await Call(app, "/metrics", None, headers).done()

    async def go():
        return [await get(h) for h in (bearer(KEY), bearer("svc-key"), bearer(ANN), {})]

    ok, service, participant, nobody = asyncio.run(go())
    assert (service.status, participant.status, nobody.status) == (403, 403, 401)
    assert ok.status == 200 and ok.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(ok.body.decode())}
    requests = [s for f in families.values() for s in f.samples if s.name == "ops_gateway_requests_total"]
    assert sum(s.value for s in requests if s.labels.get("model") == "tiny") == 3
    meter.close()


def test_no_metrics_without_a_meter_that_keeps_them():
    (answer,) = _run(make_app(FakeUpstream()), [("/metrics", None, bearer(KEY))])
    assert answer.status == 404
