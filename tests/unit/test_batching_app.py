"""The batching engine's OpenAI-compatible app on the bundled tiny model, called as ASGI (no sockets).

Its answers are Foundry Local's byte for byte (the bodies below were captured from foundry-local-sdk
2.2.1's web service for the same model and request; only ``id``, ``created`` and ``model`` differ);
errors are OpenAI-shaped; a full queue is 429 with ``Retry-After``; a client that leaves, mid-stream
or before a non-streamed answer, has its request cancelled in the engine; ``stop`` strings end an
answer before them, as Foundry does.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import ops.models
from ops.batching.app import create_app
from ops.batching.limits import Limits
from ops.batching.model import EngineModel

TINY = Path(ops.models.__file__).resolve().parent / "bundled" / "tiny-fp32"
FRANCE = [{"role": "user", "content": "What is the capital of France?"}]

# Captured from Foundry Local (foundry-local-sdk 2.2.1, /catalogs/local/v1/chat/completions) serving
# tiny-fp32: {"messages": FRANCE, "max_tokens": 8, "temperature": 0}, not streamed and streamed with
# stream_options.include_usage.
FOUNDRY_BODY = (
    '{"choices":[{"finish_reason":"length","index":0,"logprobs":null,"message":{"content":" gigabyte dropp '
    'sixteen threeader optimised again document","refusal":null,"role":"assistant"}}],"created":1796086432,'
    '"id":"chatcmpl-1f5c76d3fba3bc0b","model":"cap-7f6f4b13:1","object":"chat.completion",'
    '"system_fingerprint":null,"usage":{"completion_tokens":8,"completion_tokens_details":'
    '{"reasoning_tokens":0},"prompt_tokens":23,"prompt_tokens_details":{"cached_tokens":0},"total_tokens":31}}'
)
_CHUNK = (
    '{{"choices":[{{"delta":{delta},"finish_reason":{finish},"index":0,"logprobs":null}}],"created":1796086432,'
    '"id":"chatcmpl-cc624a03e986fa26","model":"cap-7f6f4b13:1","object":"chat.completion.chunk",'
    '"system_fingerprint":null}}'
)
FOUNDRY_STREAM = "".join(
    f"data: {line}\n\n"
    for line in [
        _CHUNK.format(delta='{"content":"","role":"assistant"}', finish="null"),
        *(
            _CHUNK.format(delta=json.dumps({"content": w}, separators=(",", ":")), finish="null")
            for w in [
                " gigabyte",
                " dropp",
                " sixteen",
                " three",
                "ader",
                " optimised",
                " again",
                " document",
            ]
        ),
        _CHUNK.format(delta="{}", finish='"length"'),
        '{"choices":[],"created":1796086432,"id":"chatcmpl-cc624a03e986fa26","model":"cap-7f6f4b13:1",'
        '"object":"chat.completion.chunk","system_fingerprint":null,"usage":{"completion_tokens":8,'
        '"completion_tokens_details":{"reasoning_tokens":0},"prompt_tokens":23,"prompt_tokens_details":'
        '{"cached_tokens":0},"total_tokens":31}}',
        "[DONE]",
    ]
)


def same_but_names(ours: str, foundry: str, model: str = "tiny") -> str:
    """``ours`` with Foundry's id, created and model put in, to compare the rest byte for byte."""
    ids = re.findall(r'"id":"(chatcmpl-[0-9a-f]{16})"', foundry)
    ours = re.sub(r'"id":"chatcmpl-[0-9a-f]{16}"', f'"id":"{ids[0]}"', ours)
    ours = re.sub(r'"created":\d+', '"created":1796086432', ours)
    return ours.replace(f'"model":"{model}"', '"model":"cap-7f6f4b13:1"')


@pytest.fixture(scope="module")
def tiny():
    model = EngineModel(TINY, "tiny", Limits(max_batch=4, max_queue=4))
    yield model
    model.close()


@pytest.fixture(scope="module")
def client(tiny):
    with TestClient(create_app({"tiny": tiny})) as c:
        yield c


def chat(client, **body):
    return client.post("/v1/chat/completions", json={"model": "tiny", "messages": FRANCE, **body})


def assert_error(response, status: int, code: str | None, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "param", "type"}
    assert (error["code"], error["param"]) == (code, param)
    return error


def test_a_non_streamed_answer_is_foundrys_byte_for_byte(client):
    response = chat(client, max_tokens=8, temperature=0)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert re.fullmatch(r"chatcmpl-[0-9a-f]{16}", response.json()["id"])
    assert same_but_names(response.text, FOUNDRY_BODY) == FOUNDRY_BODY


def test_a_streamed_answer_is_foundrys_byte_for_byte(client):
    body = {"max_tokens": 8, "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    response = chat(client, **body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"  # as Foundry: no charset
    assert same_but_names(response.text, FOUNDRY_STREAM) == FOUNDRY_STREAM


def test_a_stream_without_include_usage_has_no_usage_chunk(client):
    events = chat(client, max_tokens=3, temperature=0, stream=True).text.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    assert '"finish_reason":"length"' in events[-3]
    assert all('"usage"' not in e for e in events)


def test_max_completion_tokens_and_the_models_list(client):
    answer = chat(client, max_completion_tokens=3, temperature=0).json()
    assert answer["usage"]["completion_tokens"] == 3
    cards = client.get("/v1/models").json()
    assert cards["object"] == "list"
    assert [(c["id"], c["object"], c["owned_by"]) for c in cards["data"]] == [("tiny", "model", "local")]
    assert client.get("/v1/models/tiny").json()["id"] == "tiny"
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert health["models"]["tiny"]["max_batch"] == 4


def test_a_stop_string_ends_the_answer_before_it_as_foundry_does(client):
    whole = chat(client, max_tokens=8, temperature=0).json()["choices"][0]["message"]["content"]
    assert whole == " gigabyte dropp sixteen threeader optimised again document"
    answer = chat(client, max_tokens=8, temperature=0, stop=["three", "nowhere"]).json()
    assert answer["choices"][0]["message"]["content"] == " gigabyte dropp sixteen "
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"]["completion_tokens"] == 4  # the token that held the stop string counts
    streamed = chat(client, max_tokens=8, temperature=0, stop="ader opt", stream=True).text
    pieces = [json.loads(e[6:]) for e in streamed.split("\n\n") if e.startswith("data: {")]
    text = "".join(p["choices"][0]["delta"].get("content", "") for p in pieces if p["choices"])
    assert text == " gigabyte dropp sixteen three"
    assert pieces[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"model": "tiny", "messages": FRANCE, "n": 2}, 400, "invalid_value", "n"),
        ({"model": "tiny", "messages": FRANCE, "max_tokens": 0}, 400, "invalid_type", "max_tokens"),
        ({"model": "tiny", "messages": FRANCE, "temperature": 3}, 400, "invalid_type", "temperature"),
        ({"model": "tiny", "messages": []}, 400, "invalid_type", "messages"),
        (
            {"model": "tiny", "messages": FRANCE, "max_tokens": 5000},
            400,
            "context_length_exceeded",
            "max_tokens",
        ),
        ({"model": "nope", "messages": FRANCE}, 404, "model_not_found", None),
        (
            {"model": "tiny", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            400,
            "invalid_value",
            "messages[0].content",
        ),
    ],
)
def test_bad_requests_are_openai_errors_naming_the_field(client, body, status, code, param):
    assert_error(client.post("/v1/chat/completions", json=body), status, code, param)


def test_bad_json_unknown_routes_and_methods_are_openai_errors(client):
    assert_error(client.post("/v1/chat/completions", content=b"{"), 400, "invalid_json")
    assert_error(client.get("/v1/chat/completions"), 405, "method_not_allowed")
    assert_error(client.get("/v1/nothing"), 404, "not_found")


# --- the app called as ASGI, with a client that can leave ------------------------------------------


async def call(app, body: dict, leave: asyncio.Event | None = None, leave_after_chunks: int | None = None):
    """POST ``body`` to the app; the client leaves when ``leave`` is set or after some body chunks."""
    leave = leave or asyncio.Event()
    raw = json.dumps(body).encode()
    started: dict = {}
    chunks: list[bytes] = []
    asked = False

    async def receive():
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await leave.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            started.update(message)
        elif message.get("body"):
            chunks.append(message["body"])
            if leave_after_chunks is not None and len(chunks) >= leave_after_chunks:
                leave.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    await asyncio.wait_for(app(scope, receive, send), 30)
    return started.get("status"), dict(started.get("headers") or []), b"".join(chunks)


async def until_idle(model: EngineModel) -> tuple[int, int]:
    for _ in range(200):
        if model.engine.load() == (0, 0):
            break
        await asyncio.sleep(0.01)
    return model.engine.load()


def long_body(**extra) -> dict:
    return {"model": "tiny", "messages": FRANCE, "max_tokens": 3000, "temperature": 0, **extra}


def test_a_client_that_leaves_mid_stream_has_its_request_cancelled():
    model = EngineModel(TINY, "tiny", Limits(max_batch=1, max_queue=0, lanes=1))
    app = create_app({"tiny": model})

    async def scenario():
        status, _, body = await call(app, long_body(stream=True), leave_after_chunks=4)
        return status, body, await until_idle(model)

    try:
        status, body, idle = asyncio.run(scenario())
        assert status == 200
        assert body.count(b"data: ") < 100  # it stopped, not 3,000 tokens later
        assert idle == (0, 0)
        assert model.engine.stats.cancelled == 1
    finally:
        model.close()


def test_a_client_that_leaves_before_a_non_streamed_answer_has_its_request_cancelled():
    model = EngineModel(TINY, "tiny", Limits(max_batch=1, max_queue=0, lanes=1))
    app = create_app({"tiny": model})

    async def scenario():
        leave = asyncio.Event()
        asyncio.get_running_loop().call_later(0.3, leave.set)
        status, _, _ = await call(app, long_body(max_tokens=4000), leave)
        return status, await until_idle(model)

    try:
        status, idle = asyncio.run(scenario())
        assert status is None  # the handler was cancelled before it answered
        assert idle == (0, 0)
        assert model.engine.stats.cancelled == 1
    finally:
        model.close()


def test_a_full_queue_is_429_with_retry_after_and_the_place_is_free_once_the_client_left():
    model = EngineModel(TINY, "tiny", Limits(max_batch=1, max_queue=0, lanes=1))
    app = create_app({"tiny": model})

    async def scenario():
        leave = asyncio.Event()
        first = asyncio.ensure_future(call(app, long_body(stream=True), leave))
        await asyncio.sleep(0.2)
        refused = await call(app, long_body(max_tokens=4))
        leave.set()
        await first
        await until_idle(model)
        return refused, await call(app, long_body(max_tokens=4))

    try:
        (status, headers, body), (again, _, _) = asyncio.run(scenario())
        assert status == 429
        assert headers[b"retry-after"] == b"1"
        error = json.loads(body)["error"]
        assert (error["type"], error["code"]) == ("rate_limit_error", "server_busy")
        assert "1 requests are generating and 0 waiting" in error["message"]
        assert again == 200
    finally:
        model.close()
