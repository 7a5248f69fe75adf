"""Sharing a model among callers: slots, per-caller limits, fair order (or arrival order), a bounded
queue answered 429 with Retry-After, waiting clients that leave, and slots never leaked."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from ops.gateway.sharing import DEFAULT_SLOTS, Pool, QueueFull, Sharing
from ops.metering import NullMeter
from ops.profiles.classroom import SharingSpec

from .gatewayfakes import KEY, Call, FakeParticipants, FakeUpstream, RecordingMeter, bearer, make_app, settle

ANN = "ann-key-0001"

CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5}


def pool(slots: int = 1, per_caller: int = 8, queue: int = 64, policy: str = "fair", meter=None) -> Pool:
    spec = SharingSpec(policy=policy, per_caller=per_caller, queue=queue)
    return Pool("tiny", spec, slots, meter or NullMeter())


async def _grant_order(policy: str) -> list[str]:
    """One slot; greedy g holds it with three more waiting, then a, b, c arrive. The order slots go out."""
    p = pool(slots=1, policy=policy)
    first = await p.acquire("g")
    order: list[str] = []

    async def want(caller: str) -> None:
        slot = await p.acquire(caller)
        order.append(caller)
        await asyncio.sleep(0)
        slot.release()

    tasks = [asyncio.ensure_future(want(c)) for c in ("g", "g", "g", "a", "b", "c")]
    await settle()
    assert len(p.waiting) == 6 and order == []
    first.release()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert p.total == 0 and not p.waiting and not p.running
    return order


def test_fair_serves_the_callers_with_fewest_running_round_robin_not_in_arrival_order():
    assert asyncio.run(_grant_order("fair")) == ["a", "b", "c", "g", "g", "g"]


def test_fifo_serves_in_arrival_order():
    assert asyncio.run(_grant_order("fifo")) == ["g", "g", "g", "a", "b", "c"]


def test_fair_round_robin_among_busy_callers():
    async def scenario() -> list[str]:
        p = pool(slots=2, per_caller=4)
        held = [await p.acquire("a"), await p.acquire("b")]
        order: list[str] = []

        async def want(caller: str) -> None:
            slot = await p.acquire(caller)
            order.append(caller)
            held.append(slot)

        tasks = [asyncio.ensure_future(want(c)) for c in ("a", "a", "a", "b", "b", "b")]
        await settle()
        while len(order) < 6:  # free the oldest slot, one at a time
            held.pop(0).release()
            await settle()
        await asyncio.gather(*tasks)
        return order

    order = asyncio.run(scenario())
    assert order in (["a", "b", "a", "b", "a", "b"], ["b", "a", "b", "a", "b", "a"]), order


def test_per_caller_limits_one_caller_while_others_run():
    async def scenario() -> None:
        p = pool(slots=4, per_caller=2)
        g1, g2 = await p.acquire("g"), await p.acquire("g")
        third = asyncio.ensure_future(p.acquire("g"))
        await settle()
        assert not third.done(), "a third request of g waits although slots are free"
        a = await asyncio.wait_for(p.acquire("a"), 1)  # another caller runs at once
        assert p.total == 3 and p.running["g"] == 2
        g1.release()
        slot = await asyncio.wait_for(third, 1)
        assert slot.queued > 0 and p.running["g"] == 2
        for s in (g2, a, slot):
            s.release()
        assert p.total == 0

    asyncio.run(scenario())


def test_the_stack_key_is_bound_by_the_slots_only():
    """The instructor's CLI and `ops bench` use the stack key: per_caller does not cut their load to 2."""

    async def scenario() -> None:
        p = pool(slots=3, per_caller=1)
        held = [await asyncio.wait_for(p.acquire("admin"), 1) for _ in range(3)]
        fourth = asyncio.ensure_future(p.acquire("admin"))
        await settle()
        assert not fourth.done() and p.running["admin"] == 3
        held.pop().release()
        held.append(await asyncio.wait_for(fourth, 1))
        for slot in held:
            slot.release()

    asyncio.run(scenario())


def test_slots_bound_everyone_together():
    async def scenario() -> None:
        p = pool(slots=2, per_caller=2)
        a, b = await p.acquire("a"), await p.acquire("b")
        c = asyncio.ensure_future(p.acquire("c"))
        await settle()
        assert not c.done() and p.total == 2
        b.release()
        (await asyncio.wait_for(c, 1)).release()
        a.release()
        assert p.total == 0

    asyncio.run(scenario())


def test_a_full_queue_refuses_with_an_estimate():
    async def scenario() -> None:
        meter = RecordingMeter()
        p = pool(slots=1, queue=2, meter=meter)
        held = await p.acquire("a")
        waiting = [asyncio.ensure_future(p.acquire(c)) for c in ("b", "c")]
        await settle()
        with pytest.raises(QueueFull) as refused:
            await p.acquire("d")
        assert refused.value.waiting == 2 and refused.value.retry_after >= 1
        assert meter.depths == [("tiny", 1), ("tiny", 2)]
        held.release()
        await settle()
        assert meter.depths[-1] == ("tiny", 1)
        for task in waiting:
            task.cancel()
        await settle()
        assert meter.depths[-1] == ("tiny", 0)

    asyncio.run(scenario())


def test_a_client_that_leaves_while_waiting_leaves_the_queue():
    async def scenario() -> None:
        p = pool(slots=1)
        held = await p.acquire("a")
        gone = asyncio.ensure_future(p.acquire("b"))
        stays = asyncio.ensure_future(p.acquire("c"))
        await settle()
        gone.cancel()
        await settle()
        assert len(p.waiting) == 1
        held.release()
        slot = await asyncio.wait_for(stays, 1)
        assert p.running == {"c": 1}, "the slot went to the one still waiting, not to the one who left"
        slot.release()
        assert p.total == 0

    asyncio.run(scenario())


def test_a_slot_granted_as_its_client_leaves_is_given_back():
    async def scenario() -> None:
        p = pool(slots=1)
        held = await p.acquire("a")
        late = asyncio.ensure_future(p.acquire("b"))
        await settle()
        held.release()  # granted to b (its future is done) ...
        late.cancel()  # ... but b's client left before it resumed
        with pytest.raises(asyncio.CancelledError):
            await late
        assert p.total == 0 and not p.running and not p.waiting

    asyncio.run(scenario())


def test_release_twice_counts_once():
    async def scenario() -> None:
        p = pool(slots=2)
        slot = await p.acquire("a")
        slot.release()
        slot.release()
        assert p.total == 0 and not p.running

    asyncio.run(scenario())


def test_slots_come_from_the_profile_else_the_server_else_the_default():
    servers = {"engine": 32, "foundry": None}
    assert Sharing(SharingSpec(), servers.get).slots("engine") == 32
    assert Sharing(SharingSpec(), servers.get).slots("foundry") == DEFAULT_SLOTS == 8
    assert Sharing(SharingSpec(slots=3), servers.get).slots("engine") == 3


def test_the_batching_engine_route_says_lanes_times_max_batch(monkeypatch, tmp_path):
    from ops.models import batching
    from ops.profiles.schema import ModelSpec

    class Engine:
        context = 2048

    class Server:
        base_url = "http://127.0.0.1:9/v1"
        models: dict = {}

        def add(self, model):
            pass

    provider = batching.BatchingProvider()
    monkeypatch.setattr(provider, "start", lambda: None)
    monkeypatch.setattr(provider, "_engine_model", lambda alias, folder, limits: Engine())
    provider.server = Server()
    spec = ModelSpec.model_validate({"path": str(tmp_path), "batch": {"lanes": 3, "max_batch": 2}})
    route = provider.prepare("m", spec, tmp_path, lambda *a: None)
    assert route.slots == 6


# --- Through the gateway --------------------------------------------------------------------------


def test_the_slot_is_held_until_the_stream_ends_then_released():
    async def scenario() -> None:
        upstream = FakeUpstream()
        upstream.hold = True
        app = make_app(
            upstream, sharing=SharingSpec(per_caller=1), participants=FakeParticipants(keys={"ann": ANN})
        )
        pools = app.state.inference.sharing
        call = Call(app, "/v1/chat/completions", {**CHAT, "stream": True}, bearer(ANN))
        await asyncio.wait_for(call.first_content.wait(), 5)
        assert pools.pool("tiny").total == 1, "held while the answer streams"
        second = Call(app, "/v1/chat/completions", CHAT, bearer(ANN))
        await settle()
        assert len(pools.pool("tiny").waiting) == 1, "per_caller 1: ann's second request waits"
        upstream.release.set()
        await call.done()
        await second.done()
        assert call.status == 200 and b"[DONE]" in call.body and second.status == 200
        assert pools.pool("tiny").total == 0 and not pools.pool("tiny").waiting

    asyncio.run(scenario())


def test_the_slot_is_released_when_the_client_leaves_midstream():
    async def scenario() -> None:
        upstream = FakeUpstream()
        upstream.hold = True
        meter = RecordingMeter()
        app = make_app(upstream, meter=meter)
        call = Call(app, "/v1/chat/completions", {**CHAT, "stream": True}, bearer(KEY))
        await asyncio.wait_for(call.first_content.wait(), 5)
        call.leave()
        await call.done()
        await settle()
        assert app.state.inference.sharing.pool("tiny").total == 0
        assert upstream.open_streams == 0, "the upstream stream was closed"
        assert [r.status for r in meter.records] == [499]

    asyncio.run(scenario())


def test_a_client_that_leaves_while_queued_frees_its_place_and_never_reaches_the_upstream():
    async def scenario() -> None:
        upstream = FakeUpstream()
        upstream.hold = True
        meter = RecordingMeter()
        app = make_app(upstream, meter=meter, sharing=SharingSpec(slots=1))
        running = Call(app, "/v1/chat/completions", {**CHAT, "stream": True}, bearer(KEY))
        await asyncio.wait_for(running.first_content.wait(), 5)
        queued = Call(app, "/v1/chat/completions", CHAT, bearer(KEY))
        await settle()
        pool = app.state.inference.sharing.pool("tiny")
        assert len(pool.waiting) == 1
        queued.leave()
        await queued.done()
        assert not pool.waiting and pool.total == 1
        upstream.release.set()
        await running.done()
        assert pool.total == 0 and len(upstream.bodies) == 1
        assert sorted(r.status for r in meter.records) == [200, 499]

    asyncio.run(scenario())


def test_a_full_queue_is_answered_429_with_retry_after_in_openai_shape():
    async def scenario() -> None:
        upstream = FakeUpstream()
        upstream.hold = True
        meter = RecordingMeter()
        app = make_app(upstream, meter=meter, sharing=SharingSpec(slots=1, queue=1))
        running = Call(app, "/v1/chat/completions", {**CHAT, "stream": True}, bearer(KEY))
        await asyncio.wait_for(running.first_content.wait(), 5)
        waiting = Call(app, "/v1/chat/completions", CHAT, bearer(KEY))
        await settle()
        refused = await Call(app, "/v1/chat/completions", CHAT, bearer(KEY)).done()
        assert refused.status == 429
        assert int(refused.headers["retry-after"]) >= 1
        error = refused.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["code"] == "queue_full"
        assert "'tiny' is busy" in error["message"]
        upstream.release.set()
        await running.done()
        await waiting.done()
        assert waiting.status == 200
        assert sorted(r.status for r in meter.records) == [200, 200, 429]
        assert app.state.inference.sharing.pool("tiny").total == 0

    asyncio.run(scenario())


def test_a_failing_upstream_releases_the_slot():
    async def scenario() -> None:
        app = make_app(FakeUpstream())

        async def broken(request):
            raise httpx.ConnectError("refused")

        app.state.inference.upstreams.client = httpx.AsyncClient(transport=httpx.MockTransport(broken))
        call = await Call(app, "/v1/chat/completions", CHAT, bearer(KEY)).done()
        assert call.status == 502
        assert app.state.inference.sharing.pool("tiny").total == 0

    asyncio.run(scenario())


def test_a_virtual_model_takes_a_slot_of_the_model_it_is_tried_on():
    from ops.profiles.schema import RoutingSpec

    async def scenario() -> None:
        upstream = FakeUpstream()
        upstream.hold = True
        routing = RoutingSpec.model_validate({"models": {"auto": {"default": ["tiny"]}}})
        app = make_app(upstream, routing=routing, sharing=SharingSpec(slots=1, queue=0))
        pool = app.state.inference.sharing.pool("tiny")
        running = Call(app, "/v1/chat/completions", {**CHAT, "model": "auto", "stream": True}, bearer(KEY))
        await asyncio.wait_for(running.first_content.wait(), 5)
        assert pool.total == 1 and running.headers["x-ops-route"] == "tiny"
        busy = await Call(app, "/v1/chat/completions", {**CHAT, "model": "auto"}, bearer(KEY)).done()
        assert busy.status == 429 and busy.json()["error"]["code"] == "queue_full"
        assert "retry-after" in busy.headers
        upstream.release.set()
        await running.done()
        assert pool.total == 0

    asyncio.run(scenario())


def test_the_host_gets_the_quota_and_a_host_without_one_keeps_its_fingerprint(tmp_path):
    from ops import profiles
    from ops.host.config import HostConfig
    from ops.plan import resolve

    def config(extra: str) -> HostConfig:
        path = tmp_path / "q.yaml"
        path.write_text(f"name: q\nmodels:\n  tiny: {{path: bundled:tiny-fp32}}\n{extra}")
        return HostConfig.from_plan(resolve(profiles.load_path(path), ask_catalog=False), ["127.0.0.1"])

    plain = config("")
    named = config("participants: {names: [ann]}\n")
    quota = config("participants: {names: [ann], tokens_per_hour: 5000}\n")
    assert plain.tokens_per_hour is None and quota.tokens_per_hour == 5000
    assert HostConfig.from_json(quota.to_json()) == quota
    assert plain.fingerprint() == named.fingerprint(), "no quota: the same host as before, not restarted"
    assert quota.fingerprint() != plain.fingerprint(), "a quota is read at start: a change restarts the host"
