"""The RAG app signs participants in by asking the gateway, and names them on their requests (X-Ops-User)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "stacks" / "chainlit-rag"))

from rag import embeddings, gateway  # noqa: E402

KEY = "service-key-of-the-app"


@pytest.fixture
def gateway_stub(monkeypatch):
    """A stub of the gateway's sign-in and chat routes; every request is kept."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/ops/v1/signin":
            body = json.loads(request.content)
            if request.headers["authorization"] != f"Bearer {KEY}":
                return httpx.Response(401, json={"error": {"message": "bad key"}})
            if (body["username"], body["password"]) == ("p01", "abcd-efgh-jkmn"):
                return httpx.Response(200, json={"participant": "p01"})
            return httpx.Response(401, json={"error": {"message": "refused"}})
        if request.url.path == "/v1/chat/completions":
            return httpx.Response(
                200, text='data: {"choices":[{"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n'
            )
        if request.url.path == "/v1/embeddings":
            return httpx.Response(200, json={"data": [{"index": 0, "embedding": [1.0, 0.0]}]})
        return httpx.Response(404)

    transport = httpx.MockTransport(handle)
    real_async = httpx.AsyncClient
    monkeypatch.setattr(httpx, "AsyncClient", lambda **kw: real_async(transport=transport, **kw))
    monkeypatch.setattr(httpx, "post", lambda url, **kw: httpx.Client(transport=transport).post(url, **kw))
    return seen


def test_a_participant_signs_in_through_the_gateway_with_the_apps_key(gateway_stub):
    gw = gateway.Gateway("http://gw:8000/v1", KEY)
    assert asyncio.run(gw.sign_in("p01", "abcd-efgh-jkmn")) == "p01"
    assert asyncio.run(gw.sign_in("p01", "wrong")) is None
    assert asyncio.run(gateway.Gateway("http://gw:8000/v1", "other").sign_in("p01", "abcd-efgh-jkmn")) is None
    request = gateway_stub[0]
    assert str(request.url) == "http://gw:8000/ops/v1/signin"
    assert json.loads(request.content) == {"username": "p01", "password": "abcd-efgh-jkmn"}


def test_an_unreachable_gateway_signs_nobody_in():
    gw = gateway.Gateway("http://127.0.0.1:9/v1", KEY)
    assert asyncio.run(gw.sign_in("p01", "abcd-efgh-jkmn")) is None


def test_requests_for_a_participant_name_them_and_others_do_not(gateway_stub):
    gw = gateway.Gateway("http://gw:8000/v1", KEY)
    embedder = embeddings.GatewayEmbedder("http://gw:8000/v1", KEY, "bag")

    async def ask(caller: str) -> None:
        gateway.CALLER.set(caller)
        _ = [piece async for piece in gw.stream("m", [{"role": "user", "content": "q"}], 8)]
        await asyncio.to_thread(embedder.embed, ["q"])  # the query's embedding, in a thread

    asyncio.run(ask("p01"))
    asyncio.run(ask(""))
    named = [(r.url.path, r.headers.get("x-ops-user")) for r in gateway_stub]
    assert named == [
        ("/v1/chat/completions", "p01"),
        ("/v1/embeddings", "p01"),
        ("/v1/chat/completions", None),
        ("/v1/embeddings", None),
    ]
