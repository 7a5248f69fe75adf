"""Hybrid routing in the gateway, against real upstreams: local models, a "cloud", one failing, one stalling."""

from __future__ import annotations

import json

import httpx
import pytest

from ops import profiles
from ops.host import process
from ops.plan import resolve
from ops.stack import GATEWAY_KEY, prepare_state
from tests.integration.hosts import free_port
from tests.integration.stub_upstream import StubUpstream

PROMPT = [{"role": "user", "content": "Tell me about local language models."}]


@pytest.fixture(scope="module")
def routed(tmp_path_factory):
    home = tmp_path_factory.mktemp("routing-home")
    with (
        StubUpstream("cloud") as cloud,
        StubUpstream("flaky", "fail") as flaky,
        StubUpstream("stall", "stall") as stall,
        StubUpstream("here") as here,
    ):
        port = free_port()
        path = tmp_path_factory.mktemp("routing") / "routed.yaml"
        path.write_text(
            f"""\
models:
  tiny: {{path: bundled:tiny-fp32}}
  tiny-int4: {{path: bundled:tiny-int4}}
  cloud: {{url: "{cloud.url}", model: m, remote: true}}
  flaky: {{url: "{flaky.url}", model: m}}
  stall: {{url: "{stall.url}", model: m}}
  keyed: {{url: "{cloud.url}", model: m, api_key_env: OPS_TEST_KEY_NOT_SET, remote: true}}
  cloud-embed: {{url: "{cloud.url}", model: m, task: embeddings, remote: true}}
  here: {{url: "{here.url}", model: m, remote: false}}
gateway:
  port: {port}
  bind: [127.0.0.1]
  default_max_tokens: 8
  aliases: {{gpt-4o-mini: cloud}}
  routing:
    models:
      auto:
        rules:
          - when: {{private: true}}
            to: [cloud, tiny]
          - when: {{task: code}}
            to: [tiny-int4]
          - when: {{min_tokens: 200}}
            to: [cloud]
        default: [flaky, tiny]
        timeout: 5
      slow:
        default: [stall, tiny-int4]
        timeout: 1
      broken:
        default: [flaky]
      keyless:
        default: [keyed, tiny]
"""
        )
        from ops.settings import Settings

        settings = Settings.from_env({"OPS_HOME": str(home)})
        loaded = profiles.load_path(path)
        state = prepare_state(loaded.name, settings)
        process.start(resolve(loaded), state, ["127.0.0.1"], timeout=120)
        key = state.secrets.get(GATEWAY_KEY).reveal()
        try:
            yield {
                "url": f"http://127.0.0.1:{port}/v1",
                "key": key,
                "cloud": cloud,
                "flaky": flaky,
                "stall": stall,
                "here": here,
            }
        finally:
            process.stop(state)


def chat(r, model: str, messages=PROMPT, stream: bool = False, headers=None):
    body = {"model": model, "messages": messages, "temperature": 0, "stream": stream}
    return httpx.post(
        f"{r['url']}/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {r['key']}", **(headers or {})},
        timeout=60,
    )


def test_default_route_falls_back_from_a_failing_upstream(routed):
    before = len(routed["flaky"].received)
    response = chat(routed, "auto")
    assert response.status_code == 200, response.text
    assert response.headers["x-ops-route"] == "tiny"
    assert "fell back after flaky: HTTP 500" in response.headers["x-ops-route-reason"]
    assert response.json()["choices"][0]["message"]["content"]
    assert len(routed["flaky"].received) == before + 1


def test_streaming_works_through_a_fallback(routed):
    response = chat(routed, "auto", stream=True)
    assert response.status_code == 200 and response.headers["x-ops-route"] == "tiny"
    pieces = [
        (json.loads(line[6:])["choices"][0].get("delta") or {}).get("content") or ""
        for line in response.text.splitlines()
        if line.startswith("data: ") and line != "data: [DONE]" and json.loads(line[6:]).get("choices")
    ]
    assert len([p for p in pieces if p]) >= 3


def test_code_goes_to_the_code_route(routed):
    response = chat(routed, "auto", [{"role": "user", "content": "Fix this python: def f(x) return x"}])
    assert response.headers["x-ops-route"] == "tiny-int4" and response.headers["x-ops-task"] == "code"


def test_large_input_goes_to_the_cloud(routed):
    before = len(routed["cloud"].received)
    big = [{"role": "user", "content": "Summarise this report. " + "The workshop went well. " * 60}]
    response = chat(routed, "auto", big)
    assert response.headers["x-ops-route"] == "cloud"
    assert response.json()["choices"][0]["message"]["content"] == "from cloud"
    assert len(routed["cloud"].received) == before + 1


@pytest.mark.parametrize(
    ("messages", "headers"),
    [
        ([{"role": "user", "content": "Write to anna.schmidt@example.org about her invoice."}], {}),
        ([{"role": "user", "content": "Call me on +49 170 1234567 tomorrow."}], {}),
        (PROMPT, {"x-ops-private": "true"}),
        (
            [{"role": "user", "content": "Summarise: " + "confidential figures. " * 80}],
            {"x-ops-private": "1"},
        ),
    ],
    ids=["email", "phone", "marked", "marked-and-large"],
)
def test_private_requests_never_reach_the_cloud(routed, messages, headers):
    before = len(routed["cloud"].received)
    response = chat(routed, "auto", messages, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["x-ops-route"] == "tiny"
    assert (
        "remote routes removed" in response.headers["x-ops-route-reason"] or "marked-and-large" not in headers
    )
    assert len(routed["cloud"].received) == before, "a private request reached the cloud upstream"


def test_a_stalling_upstream_times_out_to_the_next(routed):
    response = chat(routed, "slow")
    assert response.status_code == 200
    assert response.headers["x-ops-route"] == "tiny-int4"
    assert "stall: no answer within 1 s" in response.headers["x-ops-route-reason"]


def test_virtual_models_are_listed_and_counted(routed):
    headers = {"authorization": f"Bearer {routed['key']}"}
    listed = {m["id"]: m for m in httpx.get(f"{routed['url']}/models", headers=headers).json()["data"]}
    assert listed["auto"]["owned_by"] == "ops-router"
    assert listed["auto"]["routes_to"] == ["cloud", "tiny", "tiny-int4", "flaky"]
    chat(routed, "auto")
    counts = httpx.get(routed["url"].removesuffix("/v1") + "/ops/metrics", headers=headers).json()["routing"]
    assert counts["requests:auto"] >= 1 and counts["route:tiny"] >= 1 and counts["fallbacks"] >= 1


def test_when_every_route_fails_the_client_gets_each_reason(routed):
    response = chat(routed, "broken")
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "all_routes_failed" and "flaky: HTTP 500" in error["message"]


def test_a_cloud_model_without_its_key_is_unavailable_not_failed(routed):
    health = httpx.get(routed["url"].removesuffix("/v1") + "/health").json()
    assert health["status"] == "ok" and health["models"]["keyed"] == "unavailable"
    assert "OPS_TEST_KEY_NOT_SET is empty" in health["details"]["keyed"]
    response = chat(routed, "keyless")
    assert response.status_code == 200 and response.headers["x-ops-route"] == "tiny"
    assert "keyed: not ready" in response.headers["x-ops-route-reason"]


def post(r, path: str, body: dict, headers=None) -> httpx.Response:
    auth = {"authorization": f"Bearer {r['key']}", **(headers or {})}
    return httpx.post(f"{r['url']}{path}", json=body, headers=auth, timeout=60)


def say(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        ("/chat/completions", {"model": "cloud", "messages": PROMPT}, {"x-ops-private": "true"}),
        ("/chat/completions", {"model": "cloud", "messages": say("Mail anna.schmidt＠example.org")}, {}),
        ("/chat/completions", {"model": "flaky", "messages": say("Call 555.123\u200b.4567")}, {}),
        ("/chat/completions", {"model": "gpt-4o-mini", "messages": say("SSN 123456789, thanks")}, {}),
        (
            "/chat/completions",
            {"model": "gpt-4o-mini", "messages": PROMPT, "metadata": {"private": True}},
            {},
        ),
        (
            "/chat/completions",
            {
                "model": "cloud",
                "messages": [
                    {"role": "user", "content": "Book it"},
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "c1",
                                "type": "function",
                                "function": {"name": "book", "arguments": '{"phone": "+49 170 1234567"}'},
                            }
                        ],
                    },
                ],
            },
            {},
        ),
        (
            "/chat/completions",
            {
                "model": "cloud",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "What is in this picture?"},
                            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                        ],
                    }
                ],
            },
            {},
        ),
        ("/embeddings", {"model": "cloud-embed", "input": ["Anna's number is (555) 123-4567"]}, {}),
        ("/embeddings", {"model": "cloud-embed", "input": "quarterly report"}, {"x-ops-private": "1"}),
    ],
    ids=[
        "direct-marked",
        "direct-fullwidth-at",
        "loopback-url-zero-width-phone",
        "alias-ssn",
        "alias-metadata",
        "tool-call-arguments",
        "image-part",
        "embeddings-phone",
        "embeddings-marked",
    ],
)
def test_a_private_request_to_a_remote_model_is_refused_and_never_sent(routed, path, body, headers):
    sent = len(routed["cloud"].received), len(routed["flaky"].received)
    response = post(routed, path, body, headers)
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "private_request_to_remote_model"
    assert "leave this machine" in error["message"] and "was not sent" in error["message"]
    assert (len(routed["cloud"].received), len(routed["flaky"].received)) == sent, "it reached the upstream"


def test_the_same_requests_without_private_data_do_reach_the_remote_model(routed):
    before = len(routed["cloud"].received)
    assert post(routed, "/chat/completions", {"model": "gpt-4o-mini", "messages": PROMPT}).status_code == 200
    embedded = post(routed, "/embeddings", {"model": "cloud-embed", "input": ["quarterly report 2024"]})
    assert embedded.status_code == 200, embedded.text
    assert len(routed["cloud"].received) == before + 2


def test_a_url_model_the_profile_says_is_local_gets_private_requests(routed):
    before = len(routed["here"].received)
    response = post(routed, "/chat/completions", {"model": "here", "messages": say("Mail a.b@example.com")})
    assert response.status_code == 200, response.text
    assert len(routed["here"].received) == before + 1


def test_models_say_which_leave_the_machine(routed):
    headers = {"authorization": f"Bearer {routed['key']}"}
    listed = {m["id"]: m for m in httpx.get(f"{routed['url']}/models", headers=headers).json()["data"]}
    remote = {name: card["remote"] for name, card in listed.items()}
    assert remote == {
        "tiny": False,
        "tiny-int4": False,
        "cloud": True,
        "flaky": True,  # a loopback url: may be a tunnel, so remote unless the profile says otherwise
        "stall": True,
        "keyed": True,
        "cloud-embed": True,
        "here": False,  # `remote: false`
        "auto": True,  # may route to cloud (private requests never)
        "slow": True,
        "broken": True,
        "keyless": True,
    }
    one = httpx.get(f"{routed['url']}/models/gpt-4o-mini", headers=headers).json()
    assert one["id"] == "cloud" and one["remote"] is True
