"""The batching engine's app against the real Foundry Local web service, on the same model folders.

Foundry Local (foundry-local-sdk 2.2.1) runs in a process of its own, serving each folder as a
bring-your-own model; the engine's app runs in this one. Greedy answers, streamed and not, are the
same token for token (text, chunks, ``finish_reason``, usage) on the bundled tiny models and on
SmolLM2-135M-Instruct built from its recipe; stop strings and the model's end token end answers
where Foundry ends them; eight streams at once each get their solo answer.

SmolLM2 int4 is compared alone, not eight at a time: onnxruntime's int4 matrix kernels round
differently for one row than for several, so any batch (``og.Generator``'s static batch too)
drifts from the solo answer after some tens of tokens; fp32 does not.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

import ops.models
from ops.batching.limits import Limits
from ops.batching.model import EngineModel
from ops.batching.server import EngineServer
from ops.bench.batching import child

BUNDLED = Path(ops.models.__file__).resolve().parent / "bundled"
CONVERSATIONS = {
    "one-turn": [{"role": "user", "content": "What is the capital of France?"}],
    "own-system-prompt": [
        {"role": "system", "content": "You are a pirate."},
        {"role": "user", "content": "Who are you?"},
    ],
    "multi-turn": [
        {"role": "user", "content": "I live in Berlin."},
        {"role": "assistant", "content": "Berlin is a great city!"},
        {"role": "user", "content": "Which city do I live in?"},
    ],
    "ends-early": [{"role": "user", "content": "What is 2+2?"}],
    "emoji": [{"role": "user", "content": "é 漢字 🎉 tell me about emoji"}],
    "parts": [{"role": "user", "content": [{"type": "text", "text": "Write a haiku about rain."}]}],
}
QUESTIONS = [
    "What is the capital of France?",
    "Name three benefits of on-device AI inference.",
    "What is 2+2?",
    "Write a haiku about rain.",
    "Explain what quantisation does to a model.",
    "Who wrote Hamlet?",
    "Why is the sky blue?",
    "Give me a tip for learning Python.",
]


class Pair:
    """Foundry's web service and the engine's app serving one folder: (base URL, model id) each."""

    def __init__(self, folder: Path, max_tokens: int):
        self.folder = folder
        self.max_tokens = max_tokens
        self._foundry = child(["ops.bench.batching", "--serve-foundry", str(folder)])
        self.foundry = self._foundry.__enter__()
        self.engine_model = EngineModel(folder, "engine", Limits(max_batch=4))
        self.server = EngineServer({"engine": self.engine_model}).start()
        self.engine = (self.server.base_url, "engine")

    def close(self) -> None:
        self.server.close()
        self._foundry.__exit__(None, None, None)


def answer(where: tuple[str, str], messages, **options) -> dict:
    url, model = where
    body = {"model": model, "messages": messages, "temperature": 0, **options}
    response = httpx.post(f"{url}/chat/completions", json=body, timeout=300)
    assert response.status_code == 200, response.text
    return response.json()


def streamed(where: tuple[str, str], messages, **options) -> tuple[list[str], str, dict]:
    """(content chunks, finish_reason, usage) of a streamed greedy answer."""
    url, model = where
    body = {
        "model": model,
        "messages": messages,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
        **options,
    }
    pieces, finish, usage = [], None, {}
    with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=300) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            usage = chunk.get("usage") or usage
            for choice in chunk["choices"]:
                if choice["delta"].get("content"):
                    pieces.append(choice["delta"]["content"])
                finish = choice["finish_reason"] or finish
    return pieces, finish, usage


def essence(body: dict) -> tuple:
    choice = body["choices"][0]
    return choice["message"]["content"], choice["finish_reason"], body["usage"]


def shape(value):
    """The keys of a JSON value, recursively (lists by their first item)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


@pytest.fixture(scope="module", params=["tiny-fp32", "tiny-int4", "smollm2-int4", "smollm2-fp32"])
def pair(request):
    if request.param.startswith("tiny"):
        folder, max_tokens = BUNDLED / request.param, 24
    else:
        smollm2 = request.getfixturevalue("smollm2")
        folder, max_tokens = Path(smollm2[request.param.split("-")[1]]), 64
    served = Pair(folder, max_tokens)
    yield served
    served.close()


@pytest.mark.parametrize("conversation", list(CONVERSATIONS))
def test_greedy_answers_are_foundrys_token_for_token(pair, conversation):
    messages = CONVERSATIONS[conversation]
    foundry = answer(pair.foundry, messages, max_tokens=pair.max_tokens)
    engine = answer(pair.engine, messages, max_tokens=pair.max_tokens)
    assert essence(engine) == essence(foundry)
    assert shape(engine) == shape(foundry)
    assert streamed(pair.engine, messages, max_tokens=pair.max_tokens) == streamed(
        pair.foundry, messages, max_tokens=pair.max_tokens
    )


def test_stop_strings_end_answers_where_foundrys_end(pair):
    messages = CONVERSATIONS["one-turn"]
    whole = answer(pair.foundry, messages, max_tokens=pair.max_tokens)["choices"][0]["message"]["content"]
    words = whole.split()
    for stop in (words[3], [words[5], "never in the text"], words[2] + " " + words[3][:2]):
        foundry = answer(pair.foundry, messages, max_tokens=pair.max_tokens, stop=stop)
        engine = answer(pair.engine, messages, max_tokens=pair.max_tokens, stop=stop)
        assert essence(engine) == essence(foundry), stop
        assert engine["choices"][0]["finish_reason"] == "stop"


def test_errors_are_refused_like_foundrys(pair):
    url, model = pair.engine
    too_long = {"model": model, "messages": CONVERSATIONS["one-turn"], "max_tokens": 100_000}
    for where in (pair.engine, pair.foundry):
        body = {**too_long, "model": where[1]}
        response = httpx.post(f"{where[0]}/chat/completions", json=body, timeout=60)
        assert response.status_code == 400
        assert set(response.json()["error"]) == {"code", "message", "param", "type"}
        assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("pair", ["tiny-fp32", "tiny-int4", "smollm2-fp32"], indirect=True)
def test_eight_streams_at_once_each_get_their_solo_answer(pair):
    url, model = pair.engine
    conversations = [[{"role": "user", "content": q}] for q in QUESTIONS]
    solo = [streamed(pair.engine, c, max_tokens=pair.max_tokens) for c in conversations]

    async def together():
        async with httpx.AsyncClient(timeout=300) as client:

            async def one(messages):
                body = {"model": model, "messages": messages, "temperature": 0, "max_tokens": pair.max_tokens}
                pieces = []
                async with client.stream(
                    "POST", f"{url}/chat/completions", json={**body, "stream": True}
                ) as response:
                    async for line in response.aiter_lines():
                        if line.startswith("data: {"):
                            for choice in json.loads(line[6:])["choices"]:
                                pieces.append(choice["delta"].get("content") or "")
                return "".join(pieces)

            return await asyncio.gather(*(one(c) for c in conversations))

    def batched() -> int:
        return sum(n for size, n in pair.engine_model.engine.stats.batch_sizes.items() if size > 1)

    before = batched()
    texts = asyncio.run(together())
    assert texts == ["".join(pieces) for pieces, _, _ in solo]
    assert batched() > before  # some of them really ran together


def test_the_server_takes_and_drops_models_while_serving(tmp_path):
    server = EngineServer({}).start()
    try:
        models = httpx.get(f"{server.base_url}/models", timeout=10).json()
        assert models == {"data": [], "object": "list"}
        server.add(EngineModel(BUNDLED / "tiny-int4", "tiny", Limits()))
        body = {"model": "tiny", "messages": CONVERSATIONS["one-turn"], "max_tokens": 4, "temperature": 0}
        assert httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=30).status_code == 200
        server.remove("tiny")
        response = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=30)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "model_not_found"
    finally:
        server.close()
