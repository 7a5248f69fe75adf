"""The real small model (SmolLM2-135M-Instruct, built from its recipe) through the real gateway.

Its chat template is applied by Foundry Local (the gateway's greedy text is, character for
character, what ONNX Runtime GenAI writes in-process after the model's own template), a second
turn uses the first, stop tokens end an answer, and ``max_tokens`` and ``temperature`` are honoured.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ops import profiles
from ops.host import process
from ops.plan import resolve
from ops.settings import Settings
from ops.stack import GATEWAY_KEY, prepare_state
from tests.integration.hosts import free_port
from tests.integration.stub_upstream import StubUpstream

BERLIN = [
    {"role": "user", "content": "I live in Berlin."},
    {"role": "assistant", "content": "Berlin is a great city!"},
    {"role": "user", "content": "Which city do I live in?"},
]


@pytest.fixture(scope="module")
def gateway(smollm2, tmp_path_factory):
    """A host serving SmolLM2 int4 as `smollm2`; yields (base URL, key)."""
    folder = tmp_path_factory.mktemp("real-model")
    settings = Settings.from_env({"OPS_HOME": str(folder / "home")})
    port = free_port()
    path = folder / "real.yaml"
    path.write_text(
        "name: real-model\n"
        "models:\n  smollm2: {recipe: smollm2-135m-instruct, precision: int4}\n"
        f"gateway: {{port: {port}, bind: [127.0.0.1]}}\n"
    )
    loaded = profiles.load_path(path)
    assert str(loaded.model_dirs["smollm2"]) == smollm2["int4"]
    state = prepare_state(loaded.name, settings)
    process.start(resolve(loaded), state, ["127.0.0.1"], timeout=300)
    yield f"http://127.0.0.1:{port}/v1", state.secrets.get(GATEWAY_KEY).reveal()
    process.stop(state)


def chat(gateway, messages, **options) -> dict:
    url, key = gateway
    body = {"model": "smollm2", "messages": messages, **options}
    response = httpx.post(
        f"{url}/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}, timeout=120
    )
    assert response.status_code == 200, response.text
    return response.json()


def text(answer: dict) -> str:
    return answer["choices"][0]["message"]["content"]


def in_process_greedy(folder: str, messages: list[dict], max_new_tokens: int) -> str:
    """ONNX Runtime GenAI in this process, after the model's own chat template: the reference."""
    from ops.runtime.inprocess import InProcessModel

    return InProcessModel(Path(folder)).generate(messages, max_new_tokens).text


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "What is the capital of France?"}],
        [{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": "Who are you?"}],
        BERLIN,
    ],
    ids=["one-turn", "own-system-prompt", "multi-turn"],
)
def test_foundry_applies_the_models_own_chat_template(gateway, smollm2, messages):
    answer = chat(gateway, messages, max_tokens=24, temperature=0)
    assert text(answer) == in_process_greedy(smollm2["int4"], messages, 24)


def test_a_second_turn_uses_the_first(gateway):
    with_history = text(chat(gateway, BERLIN, max_tokens=40, temperature=0))
    alone = text(chat(gateway, BERLIN[-1:], max_tokens=40, temperature=0))
    assert "Berlin" in with_history
    assert "Berlin" not in alone  # the answer came from the first turn, not from the question


def test_the_stop_token_ends_an_answer(gateway):
    answer = chat(gateway, [{"role": "user", "content": "What is 2+2?"}], max_tokens=200, temperature=0)
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert 0 < answer["usage"]["completion_tokens"] < 200
    assert "<|im_end|>" not in text(answer)


def test_max_tokens_is_honoured(gateway):
    answer = chat(
        gateway, [{"role": "user", "content": "Tell me a long story."}], max_tokens=5, temperature=0
    )
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["usage"]["completion_tokens"] == 5


def test_temperature_zero_repeats_and_a_high_temperature_varies(gateway):
    question = [{"role": "user", "content": "Write one sentence about the sea."}]
    greedy = {text(chat(gateway, question, max_tokens=24, temperature=0)) for _ in range(3)}
    sampled = {text(chat(gateway, question, max_tokens=24, temperature=1.5)) for _ in range(4)}
    assert len(greedy) == 1
    assert len(sampled) >= 2


def test_a_request_without_sampling_settings_gets_the_models_defaults(tmp_path):
    """The gateway fills `temperature`/`top_p` a client left out (Open WebUI sends none): the recipe's
    advice, or the profile's own value, and never overrides what the client sent."""
    with StubUpstream("stub") as stub:
        settings = Settings.from_env({"OPS_HOME": str(tmp_path / "home")})
        port = free_port()
        path = tmp_path / "defaults.yaml"
        path.write_text(
            "name: sampling-defaults\n"
            f'models:\n  m: {{url: "{stub.url}", model: m, temperature: 0.3}}\n'
            f"gateway: {{port: {port}, bind: [127.0.0.1]}}\n"
        )
        loaded = profiles.load_path(path)
        state = prepare_state(loaded.name, settings)
        process.start(resolve(loaded), state, ["127.0.0.1"], timeout=120)
        try:
            key = state.secrets.get(GATEWAY_KEY).reveal()
            for extra in ({}, {"temperature": 1.0}):
                body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}
                response = httpx.post(
                    f"http://127.0.0.1:{port}/v1/chat/completions",
                    json=body,
                    headers={"authorization": f"Bearer {key}"},
                    timeout=30,
                )
                assert response.status_code == 200, response.text
        finally:
            process.stop(state)
    assert [r.get("temperature") for r in stub.received] == [0.3, 1.0]
    assert all("top_p" not in r for r in stub.received)  # a url model has no recipe advice
