"""Participants on a real host: their own keys, token quotas, revocation, usage kept equal to the
answers' usage, and fair sharing of one real model (SmolLM2-135M) between a greedy participant and ten others.

The fairness test measures the ten participants' time to first token twice in the same run, alone
and then while a greedy participant keeps 8 streams going, and prints both; see its docstring for
the bound it asserts and why.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from ops import profiles
from ops.bench.stats import percentile
from ops.host import process
from ops.metering.store import reading
from ops.plan import resolve
from ops.settings import Settings
from ops.stack import GATEWAY_KEY, PARTICIPANT_KEY_PREFIX, participant_email, prepare_state, service_key
from ops.state import StackState

from .hosts import free_port

HI = [{"role": "user", "content": "Hi"}]


class Host:
    """A model host started the way `ops up` starts it, on a profile of the test's own."""

    def __init__(self, folder: Path, name: str, text: str):
        folder.mkdir(parents=True, exist_ok=True)
        self.settings = Settings.from_env({"OPS_HOME": str(folder / "home")})
        self.port = free_port()
        path = folder / f"{name}.yaml"
        path.write_text(text.replace("PORT", str(self.port)))
        self.loaded = profiles.load_path(path)
        self.state: StackState = prepare_state(self.loaded.name, self.settings)
        self.key = self.state.secrets.get(GATEWAY_KEY).reveal()
        process.start(resolve(self.loaded, self.settings), self.state, ["127.0.0.1"], timeout=300)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def participant(self, name: str) -> str:
        """``name``'s gateway key, made as `ops participants add` makes it (the host reads the store)."""
        return self.state.secrets.get_or_create(PARTICIPANT_KEY_PREFIX + name).reveal()

    def stop(self) -> None:
        process.stop(self.state)


def bearer(key: str, **more: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}", **more}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The bundled tiny model on both serving paths, three participants with a quota of 150 tokens an hour."""
    host = Host(
        tmp_path_factory.mktemp("quota"),
        "quota-it",
        "name: quota-it\n"
        "models:\n"
        "  tiny: {path: bundled:tiny-fp32, serve: batching}\n"
        "  tiny-f: {path: bundled:tiny-fp32, serve: foundry}\n"
        "participants: {names: [ann, bob, cat], tokens_per_hour: 150}\n"
        "gateway: {port: PORT, bind: [127.0.0.1], default_max_tokens: 16}\n",
    )
    yield host
    host.stop()


def _chat(host: Host, key: str, model: str = "tiny", stream: bool = False, **headers: str) -> httpx.Response:
    body: dict = {"model": model, "messages": HI, "max_tokens": 16}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return httpx.post(f"{host.url}/chat/completions", json=body, headers=bearer(key, **headers), timeout=60)


def _usage(response: httpx.Response) -> tuple[int, int]:
    """(prompt, completion) tokens of an answer, whole or streamed (its usage chunk)."""
    if response.headers["content-type"].startswith("text/event-stream"):
        import json

        events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")]
        usage = events[-1]["usage"]
    else:
        usage = response.json()["usage"]
    return usage["prompt_tokens"], usage["completion_tokens"]


def test_over_quota_429_while_another_participant_still_answers(tiny):
    ann, bob = tiny.participant("ann"), tiny.participant("bob")
    answers = []
    for _ in range(20):
        answers.append(_chat(tiny, ann))
        if answers[-1].status_code != 200:
            break
    refused = answers[-1]
    assert refused.status_code == 429, [a.status_code for a in answers]
    used = sum(sum(_usage(a)) for a in answers[:-1])
    assert used >= 150 > used - sum(_usage(answers[-2])), (
        "refused once the hour's tokens were used, not before"
    )
    error = refused.json()["error"]
    assert error["code"] == "quota_exceeded" and "150 tokens an hour" in error["message"]
    assert 3500 < int(refused.headers["retry-after"]) <= 3600
    assert _chat(tiny, bob).status_code == 200, "bob's quota is his own"
    # ann's quota follows ann whichever way she comes: through Open WebUI's key with her e-mail too.
    chat_ui = tiny.state.secrets.get_or_create(service_key("chat")).reveal()
    email = participant_email("quota-it", "ann")
    assert _chat(tiny, chat_ui, **{"X-OpenWebUI-User-Email": email}).status_code == 429


def test_a_revoked_participant_is_refused_from_the_next_request(tiny):
    cat = tiny.participant("cat")
    assert _chat(tiny, cat).status_code == 200
    chat_ui = tiny.state.secrets.get_or_create(service_key("chat")).reveal()
    email = participant_email("quota-it", "cat")
    assert _chat(tiny, chat_ui, **{"X-OpenWebUI-User-Email": email}).status_code == 200
    tiny.state.secrets.delete(PARTICIPANT_KEY_PREFIX + "cat")  # what `ops participants remove` does
    refused = _chat(tiny, cat)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    through_ui = _chat(tiny, chat_ui, **{"X-OpenWebUI-User-Email": email})
    assert through_ui.status_code == 403 and through_ui.json()["error"]["code"] == "participant_removed"
    assert _chat(tiny, chat_ui, **{"X-Ops-User": "cat"}).status_code == 403, "through the RAG app too"


@pytest.mark.parametrize("model", ["tiny", "tiny-f"])
def test_usage_recorded_equals_the_answers_usage_on_both_serving_paths(tiny, model):
    dan = tiny.participant(f"dan-{model}")
    answers = [
        _chat(tiny, dan, model),
        _chat(tiny, dan, model, stream=True),
        _chat(tiny, dan, model, stream=True),
    ]
    assert [a.status_code for a in answers] == [200, 200, 200]
    # A stream whose client did not ask for usage gets none, though the gateway asked the upstream for it.
    plain = httpx.post(
        f"{tiny.url}/chat/completions",
        json={"model": model, "messages": HI, "max_tokens": 16, "stream": True},
        headers=bearer(dan),
        timeout=60,
    )
    assert plain.status_code == 200 and '"usage"' not in plain.text and plain.text.rstrip().endswith("[DONE]")
    prompt = sum(_usage(a)[0] for a in answers)
    completion = sum(_usage(a)[1] for a in answers)
    deadline = time.monotonic() + 10
    while True:  # the host's writer thread commits within milliseconds
        with reading(tiny.state.usage_db) as store:
            assert store is not None
            groups = [g for g in store.groups("caller") if g.key == f"participant:dan-{model}"]
        if sum(g.requests for g in groups) == 4 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    (group,) = groups
    assert (group.model, group.requests, group.errors) == (model, 4, 0)
    assert group.completion_tokens - completion <= 16 and group.prompt_tokens - prompt <= 40
    # The fourth (plain) stream's tokens came from the upstream's usage chunk, which the client never saw;
    # without it the first three match the answers exactly.
    with reading(tiny.state.usage_db) as store:
        assert store is not None
        with store._reading() as conn:
            rows = conn.execute(
                "SELECT prompt_tokens, completion_tokens FROM usage WHERE caller = ? ORDER BY at",
                (f"participant:dan-{model}",),
            ).fetchall()
    assert [tuple(r) for r in rows[:3]] == [_usage(a) for a in answers]
    assert rows[3][1] > 0, "the plain stream's tokens were counted too"


# --- Fairness on a real model ---------------------------------------------------------------------


async def _stream(client: httpx.AsyncClient, url: str, key: str, max_tokens: int) -> tuple[float, float, int]:
    """(seconds to the first content chunk, seconds to the end, status) of one streamed answer."""
    started = time.perf_counter()
    first = None
    body = {
        "model": "smol",
        "messages": [{"role": "user", "content": "Tell me about rivers."}],
        "max_tokens": max_tokens,
        "stream": True,
    }
    async with client.stream("POST", f"{url}/chat/completions", json=body, headers=bearer(key)) as response:
        async for line in response.aiter_lines():
            if (
                first is None
                and line.startswith("data: {")
                and '"content":"' in line
                and '"content":""' not in line
            ):
                first = time.perf_counter() - started
        status = response.status_code
    return (first if first is not None else float("inf")), time.perf_counter() - started, status


async def _round(url: str, modest: list[str], greedy: str | None) -> tuple[list[float], dict]:
    """The modest participants' TTFTs, each sending one request at once, with (or without) the greedy
    participant keeping 8 streams going from before they start until after they are all answered."""
    figures: dict = {"greedy_requests": 0, "greedy_started": []}
    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=64)) as client:
        done = asyncio.Event()

        async def greedy_worker() -> None:
            while not done.is_set():
                figures["greedy_started"].append(time.perf_counter())
                await _stream(client, url, greedy, 64)
                figures["greedy_requests"] += 1

        workers = [asyncio.ensure_future(greedy_worker()) for _ in range(8)] if greedy else []
        if workers:
            await asyncio.sleep(3.0)  # the greedy streams are all running, and queued
        results = await asyncio.gather(*(_stream(client, url, key, 32) for key in modest))
        figures["modest_done"] = time.perf_counter()
        done.set()
        await asyncio.gather(*workers)
    assert all(status == 200 for _, _, status in results), results
    return [ttft for ttft, _, _ in results], figures


@pytest.fixture(scope="module")
def smol(smollm2, tmp_path_factory):
    """SmolLM2-135M int4 on the batching engine, the default sharing (fair, 2 per caller)."""
    host = Host(
        tmp_path_factory.mktemp("fair"),
        "fair-it",
        "name: fair-it\n"
        f"models:\n  smol: {{path: {smollm2['int4']}}}\n"
        "gateway: {port: PORT, bind: [127.0.0.1], sharing: {policy: fair, per_caller: 2}}\n",
    )
    yield host
    host.stop()


def test_ten_participants_are_served_fairly_beside_a_greedy_one(smol):
    """One participant with 8 concurrent streams and 10 participants with one each.

    Measured here (2 cores, SmolLM2-135M int4, batching engine, 32-token answers, the greedy's
    64-token): see the printed figures; the README states the run's numbers. Asserted: every one of
    the ten is served; their TTFT p95 with the greedy participant is at most 1.5x theirs without it
    plus 0.5 s. Why that bound: with ``per_caller: 2`` the greedy participant runs 2 of its 8 streams
    at a time, so the ten share the engine with 2 streams more than alone (12 instead of 10): about
    20% more work per engine step; 1.5x leaves room for the machine's noise and the 0.5 s for the
    first engine step of a new batch. Without sharing (the greedy's 8 streams all running) the ten
    would share with 8 more streams, near twice the work.
    """
    modest = [smol.participant(f"m{i:02d}") for i in range(10)]
    greedy = smol.participant("greedy")
    _stream_once = asyncio.run(_round(smol.url, modest[:1], None))  # warm the model and the connections
    assert _stream_once[0][0] < float("inf")
    alone, _ = asyncio.run(_round(smol.url, modest, None))
    shared, figures = asyncio.run(_round(smol.url, modest, greedy))
    p95_alone, p95_shared = percentile(alone, 95), percentile(shared, 95)
    print(
        f"\nfairness: ten participants' TTFT p50/p95 alone {percentile(alone, 50):.3f}/{p95_alone:.3f} s, "
        f"beside a greedy one with 8 streams {percentile(shared, 50):.3f}/{p95_shared:.3f} s "
        f"(x{p95_shared / p95_alone:.2f}); the greedy one finished {figures['greedy_requests']} requests"
    )
    assert all(t < float("inf") for t in shared), "every one of the ten got a first token"
    assert p95_shared <= 1.5 * p95_alone + 0.5


def test_fair_order_beats_arrival_order_when_slots_are_scarce(smollm2, tmp_path):
    """The policy alone: 4 slots and no per-caller limit to speak of (8), so the greedy participant can
    fill every slot and the queue. ``fifo`` serves its queued requests before the ten who came later;
    ``fair`` serves the ten first (none of them has a request running). Asserted: fair's TTFT p95 for
    the ten beside the greedy one is below fifo's; both figures are printed."""
    p95 = {}
    for policy in ("fair", "fifo"):
        host = Host(
            tmp_path / policy,
            f"order-{policy}",
            f"name: order-{policy}\n"
            f"models:\n  smol: {{path: {smollm2['int4']}}}\n"
            "gateway: {port: PORT, bind: [127.0.0.1], "
            f"sharing: {{policy: {policy}, per_caller: 8, slots: 4}}}}\n",
        )
        try:
            modest = [host.participant(f"m{i:02d}") for i in range(10)]
            asyncio.run(_round(host.url, modest[:1], None))  # warm up
            shared, figures = asyncio.run(_round(host.url, modest, host.participant("greedy")))
        finally:
            host.stop()
        p95[policy] = percentile(shared, 95)
        print(
            f"\n{policy}, 4 slots: ten participants' TTFT p50/p95 beside a greedy one with 8 streams "
            f"{percentile(shared, 50):.3f}/{p95[policy]:.3f} s; the greedy one finished {figures['greedy_requests']}"
        )
    assert p95["fair"] < p95["fifo"]
