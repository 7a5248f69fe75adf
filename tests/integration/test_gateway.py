"""The gateway in front of a real Foundry Local runtime, driven by the official openai client."""

from __future__ import annotations

import concurrent.futures
import json
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from ops import paths
from ops.runtime.inprocess import InProcessModel

from .hosts import RunningHost

PROMPT = [{"role": "user", "content": "What is ONNX Runtime?"}]


@pytest.fixture(scope="module", params=["batching", "foundry"])
def host(tmp_path_factory, request):
    """Every test here runs against both serving paths: clients must see no difference."""
    home, folder = tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("profiles")
    running = RunningHost(home, folder, "gw", serve=request.param)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def reference():
    return InProcessModel(paths.bundled_model("tiny-fp32"))


@pytest.fixture
def client(host):
    return OpenAI(base_url=host.base_url, api_key=host.key, max_retries=0)


def test_lists_models_by_alias(client):
    assert [m.id for m in client.models.list()] == ["tiny", "tiny-int4"]
    assert client.models.retrieve("tiny").id == "tiny"


def test_chat_is_token_for_token_the_in_process_greedy_text(client, reference):
    expected = reference.generate(PROMPT, 24)
    answer = client.chat.completions.create(model="tiny", messages=PROMPT, max_tokens=24, temperature=0)
    assert answer.choices[0].message.content == expected.text
    assert answer.usage.completion_tokens == expected.tokens
    assert answer.model == "tiny"


def test_streamed_chat_matches_too(client, reference):
    expected = reference.generate(PROMPT, 24)
    stream = client.chat.completions.create(
        model="tiny", messages=PROMPT, max_tokens=24, temperature=0, stream=True
    )
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert "".join(pieces) == expected.text
    assert len([p for p in pieces if p]) > 5, "tokens must arrive one by one, not as one buffered block"


def test_request_without_max_tokens_gets_the_profile_default(host):
    body = {"model": "tiny", "messages": PROMPT}
    response = httpx.post(f"{host.base_url}/chat/completions", json=body, headers=_auth(host), timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] == 16  # gateway.default_max_tokens in the profile


def test_full_upstream_id_is_accepted(client, host):
    upstream = httpx.get(f"{host.base_url}/models/tiny", headers=_auth(host)).json()["upstream_id"]
    answer = client.chat.completions.create(model=upstream, messages=PROMPT, max_tokens=3)
    assert answer.choices[0].message.content


def test_wrong_key_is_401(host):
    bad = OpenAI(base_url=host.base_url, api_key="not-the-key", max_retries=0)
    with pytest.raises(Exception) as info:
        bad.models.list()
    assert getattr(info.value, "status_code", None) == 401


def test_unknown_model_is_404_listing_known(client):
    with pytest.raises(Exception) as info:
        client.chat.completions.create(model="gpt-9", messages=PROMPT, max_tokens=3)
    assert getattr(info.value, "status_code", None) == 404
    assert "known models: tiny, tiny-int4" in str(info.value)


def test_malformed_body_is_400(host):
    response = httpx.post(f"{host.base_url}/chat/completions", content=b"{oops", headers=_auth(host))
    assert response.status_code == 400 and "malformed JSON" in response.json()["error"]["message"]


def test_body_too_large_is_413(host):
    body = {"model": "tiny", "messages": [{"role": "user", "content": "x" * 200_000}]}
    response = httpx.post(f"{host.base_url}/chat/completions", json=body, headers=_auth(host))
    assert response.status_code == 413


def test_client_leaving_mid_stream_does_not_hurt_others(host, client):
    body = {"model": "tiny", "messages": PROMPT, "max_tokens": 400, "stream": True}
    with httpx.stream(
        "POST", f"{host.base_url}/chat/completions", json=body, headers=_auth(host)
    ) as response:
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")
        # Leave after the first token.
    answer = client.chat.completions.create(model="tiny", messages=PROMPT, max_tokens=5)
    assert answer.choices[0].message.content
    assert httpx.get(host.base_url.removesuffix("/v1") + "/health").json()["status"] == "ok"


def test_32_concurrent_streams_complete_unmixed(host, reference):
    prompts = [
        [{"role": "user", "content": f"Question number {i}: what is a small language model?"}]
        for i in range(32)
    ]
    expected = [reference.generate(p, 20).text for p in prompts]

    def stream(messages) -> str:
        body = {"model": "tiny", "messages": messages, "max_tokens": 20, "temperature": 0, "stream": True}
        text = []
        with httpx.stream(
            "POST", f"{host.base_url}/chat/completions", json=body, headers=_auth(host), timeout=120
        ) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    choices = json.loads(line[6:]).get("choices") or [{}]
                    text.append(choices[0].get("delta", {}).get("content") or "")
        return "".join(text)

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        got = list(pool.map(stream, prompts))
    assert got == expected


def test_health_needs_no_key(host):
    body = httpx.get(host.base_url.removesuffix("/v1") + "/health").json()
    assert body == {
        "status": "ok",
        "stack": "gw",
        "models": {"tiny": "ready", "tiny-int4": "ready"},
        "serving": {"tiny": host.serve, "tiny-int4": host.serve},
    }


def test_load_and_unload_through_the_host(host, client):
    url = host.base_url.removesuffix("/v1")
    response = httpx.post(f"{url}/ops/models/tiny-int4/unload", headers=_auth(host), timeout=30)
    assert response.status_code == 200 and response.json()["ready"] is False
    with pytest.raises(Exception) as info:
        client.chat.completions.create(model="tiny-int4", messages=PROMPT, max_tokens=3)
    assert getattr(info.value, "status_code", None) == 503
    response = httpx.post(f"{url}/ops/models/tiny-int4/load", headers=_auth(host), timeout=30)
    assert response.status_code == 200 and response.json()["ready"] is True
    assert client.chat.completions.create(model="tiny-int4", messages=PROMPT, max_tokens=3).choices


def _auth(host) -> dict[str, str]:
    return {"Authorization": f"Bearer {host.key}"}


def test_bundled_model_exists():
    assert Path(paths.bundled_model("tiny-fp32"), "genai_config.json").is_file()


def test_tool_schemas_are_dropped_for_a_model_that_cannot_call_tools(client, host, reference):
    # Open WebUI sends its built-in tools with every chat; for the tiny model they would only
    # overflow its context (about 14,000 tokens of schemas against 4,096).
    assert httpx.get(f"{host.base_url}/models/tiny", headers=_auth(host)).json()["tool_calling"] is False
    tool = {
        "type": "function",
        "function": {"name": f"tool_{'x' * 40}", "description": "d" * 2000, "parameters": {"type": "object"}},
    }
    expected = reference.generate(PROMPT, 12)
    answer = client.chat.completions.create(
        model="tiny", messages=PROMPT, max_tokens=12, temperature=0, tools=[tool] * 30
    )
    assert answer.choices[0].message.content == expected.text
