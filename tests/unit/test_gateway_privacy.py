"""The gateway refuses a private request to a remote model on its direct paths, with the profile's own patterns."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from ops.gateway import ModelState, ModelTable, Route
from ops.gateway.app import GatewayConfig, create_app
from ops.secrets import Secret

KEY = "test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def client():
    table = ModelTable(aliases={"gpt": "cloud"})
    # Nothing listens on port 9: a request that is forwarded fails with 502, one that is refused never tries.
    table.put(Route("cloud", "m", "http://127.0.0.1:9/v1", provider="openai", remote=True), ModelState.READY)
    table.put(Route("vec", "e", "http://127.0.0.1:9/v1", task="embeddings", remote=True), ModelState.READY)
    table.put(Route("tiny", "t", "http://127.0.0.1:9/v1"), ModelState.READY)
    # No virtual models (no routing), and the profile's own idea of personal data.
    config = GatewayConfig(stack="demo", key=Secret(KEY), private_patterns=(r"\bPROJECT-[A-Z]+\b",))
    with TestClient(create_app(table, config)) as c:
        yield c


def say(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize(
    ("path", "private", "clean", "instead"),
    [
        (
            "/v1/chat/completions",
            {"model": "cloud", "messages": say("PROJECT-X?")},
            {"messages": say("hi")},
            "tiny",
        ),
        (
            "/v1/chat/completions",
            {"model": "gpt", "messages": say("on PROJECT-Y")},
            {"messages": say("hi")},
            "tiny",
        ),
        ("/v1/embeddings", {"model": "vec", "input": ["PROJECT-Z"]}, {"input": ["figures"]}, "serves none"),
    ],
    ids=["direct", "alias", "embeddings"],
)
def test_personal_data_by_the_profiles_patterns_never_goes_to_a_remote_model(
    client, path, private, clean, instead
):
    response = client.post(path, json=private, headers=AUTH)
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "private_request_to_remote_model" and "was not sent" in error["message"]
    assert instead in error["message"]  # the local model to use instead
    # The same request without the personal data is forwarded (and fails: nothing listens there).
    assert client.post(path, json={**private, **clean}, headers=AUTH).status_code == 502


def test_a_local_model_takes_private_requests(client):
    body = {"model": "tiny", "messages": [{"role": "user", "content": "PROJECT-X"}]}
    assert client.post("/v1/chat/completions", json=body, headers=AUTH).status_code == 502  # forwarded


def test_cards_say_which_models_are_remote(client):
    cards = {c["id"]: c["remote"] for c in client.get("/v1/models", headers=AUTH).json()["data"]}
    assert cards == {"cloud": True, "vec": True, "tiny": False}
