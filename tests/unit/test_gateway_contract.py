"""The gateway's own answers (no upstream involved): auth, errors in OpenAI's shape, limits, defaults.

Forwarding to a real Foundry Local upstream is tested in tests/integration/test_gateway.py.
"""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from ops.gateway import ModelState, ModelTable, Route
from ops.gateway.app import GatewayConfig, GatewayError, _fill_max_tokens, create_app
from ops.secrets import Secret

KEY = "test-key-0123456789"


@pytest.fixture
def table():
    t = ModelTable(aliases={"small": "tiny"})
    t.put(
        Route("tiny", "tiny-fp32-generic-cpu:1", "http://127.0.0.1:9/catalogs/local/v1", context=2048),
        ModelState.READY,
    )
    t.put(Route("big", "phi-4-mini:1", "http://127.0.0.1:9/v1", provider="batching"), ModelState.LOADING)
    return t


@pytest.fixture
def client(table):
    app = create_app(table, GatewayConfig(stack="demo", key=Secret(KEY), max_body_bytes=2000))
    with TestClient(app) as c:
        yield c


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_openai_error(response, status: int, contains: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert contains in error["message"]
    return error


def test_health_needs_no_key_and_reports_loading(client, table):
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json() == {
        "status": "loading",
        "stack": "demo",
        "models": {"tiny": "ready", "big": "loading"},
        "serving": {"tiny": "foundry", "big": "batching"},  # which path serves each model
    }
    table.set_state("big", ModelState.READY)
    assert client.get("/health").json()["status"] == "ok"


@pytest.mark.parametrize("headers", [{}, auth("wrong"), {"Authorization": KEY}])
def test_v1_needs_the_key(client, headers):
    error = assert_openai_error(client.get("/v1/models", headers=headers), 401, "API key")
    assert error["code"] == "invalid_api_key"
    assert KEY not in client.get("/v1/models", headers=headers).text


def test_models_list_aliases(client):
    data = client.get("/v1/models", headers=auth()).json()
    assert [m["id"] for m in data["data"]] == ["tiny", "big"]
    assert data["data"][0]["upstream_id"] == "tiny-fp32-generic-cpu:1" and data["data"][0]["ready"] is True


@pytest.mark.parametrize("name", ["tiny", "small", "tiny-fp32-generic-cpu:1"])
def test_model_by_alias_extra_alias_or_full_id(client, name):
    assert client.get(f"/v1/models/{name}", headers=auth()).json()["id"] == "tiny"


def test_unknown_model_lists_known(client):
    assert_openai_error(client.get("/v1/models/nope", headers=auth()), 404, "known models: tiny, big")
    body = {"model": "nope", "messages": [{"role": "user", "content": "hi"}]}
    error = assert_openai_error(
        client.post("/v1/chat/completions", json=body, headers=auth()), 404, "known models"
    )
    assert error["code"] == "model_not_found"


def test_model_not_ready_is_503(client):
    body = {"model": "big", "messages": [{"role": "user", "content": "hi"}]}
    assert_openai_error(
        client.post("/v1/chat/completions", json=body, headers=auth()), 503, "not ready (loading)"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "malformed JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"messages": []}', "`model` is required"),
        (b'{"model": "tiny"}', "`messages` must be a non-empty list"),
        (
            b'{"model": "tiny", "messages": [{"role":"user","content":"x"}], "max_tokens": -3}',
            "positive integer",
        ),
        (b"\xff\xfe", "malformed JSON"),
    ],
)
def test_malformed_bodies_are_400(client, content, message):
    response = client.post("/v1/chat/completions", content=content, headers=auth())
    assert_openai_error(response, 400, message)


def test_body_too_large_is_413(client):
    body = {"model": "tiny", "messages": [{"role": "user", "content": "x" * 5000}]}
    assert_openai_error(
        client.post("/v1/chat/completions", json=body, headers=auth()), 413, "over 2000 bytes"
    )


def test_upstream_down_is_502_not_a_hang(client):
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}
    assert_openai_error(client.post("/v1/chat/completions", json=body, headers=auth()), 502, "unreachable")


def test_no_embeddings_model_is_404(client):
    body = {"model": "tiny", "input": "hello"}
    assert_openai_error(client.post("/v1/embeddings", json=body, headers=auth()), 404, "no embeddings model")


def test_unknown_route_is_openai_shaped(client):
    assert_openai_error(client.get("/v2/whatever", headers=auth()), 404, "/v2/whatever")


@pytest.mark.parametrize(
    ("given", "context", "expected"),
    [
        ({}, None, {"max_tokens": 300}),
        ({}, 100, {"max_tokens": 100}),
        ({"max_tokens": 50}, None, {"max_tokens": 50}),
        ({"max_tokens": 5000}, 2048, {"max_tokens": 2048}),
        ({"max_completion_tokens": 9000}, 2048, {"max_completion_tokens": 2048}),
        ({"max_tokens": None}, None, {"max_tokens": 300}),
    ],
)
def test_max_tokens_default_and_cap(given, context, expected):
    body = dict(given)
    _fill_max_tokens(body, 300, context)
    assert body == expected


def test_max_tokens_rejects_bools():
    with pytest.raises(GatewayError):
        _fill_max_tokens({"max_tokens": True}, 300, None)
