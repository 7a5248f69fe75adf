"""The bundled tiny models load and generate with ONNX Runtime GenAI, greedily and repeatably.

They are what the Foundry Local and gateway tests run against, so a broken or missing file
here must fail fast, before any slower test tries to serve them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ops.models
from ops.models.support import genai_support, require_genai
from tests.conftest import missing

if genai_support().no_build:  # Intel macOS: the install leaves onnxruntime-genai out on purpose
    missing(f"onnxruntime-genai ({genai_support().reason})")  # fails in CI, skips on a laptop
og = require_genai()

BUNDLED = Path(ops.models.__file__).resolve().parent / "bundled"
MODELS = ("tiny-fp32", "tiny-int4")
RUNTIME_FILES = {
    "genai_config.json",
    "model.onnx",
    "model.onnx.data",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
}
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is ONNX Runtime?"},
]
CHATML = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\nWhat is ONNX Runtime?<|im_end|>\n"
    "<|im_start|>assistant\n"
)
NEW_TOKENS = 20


def generate(model: og.Model, tokenizer: og.Tokenizer, prompt: str) -> list[int]:
    """Greedy new token ids for ``prompt``, at most ``NEW_TOKENS`` of them."""
    input_ids = tokenizer.encode(prompt)
    params = og.GeneratorParams(model)
    params.set_search_options(do_sample=False, max_length=len(input_ids) + NEW_TOKENS)
    generator = og.Generator(model, params)
    generator.append_tokens(input_ids)
    new = []
    while not generator.is_done():
        generator.generate_next_token()
        new.append(int(generator.get_next_tokens()[0]))
    return new


@pytest.fixture(scope="module", params=MODELS)
def bundled(request) -> tuple[Path, og.Model, og.Tokenizer]:
    """One bundled model folder, loaded once per module."""
    folder = BUNDLED / request.param
    model = og.Model(str(folder))
    return folder, model, og.Tokenizer(model)


@pytest.mark.parametrize("name", MODELS)
def test_folder_holds_only_what_the_runtime_reads(name):
    folder = BUNDLED / name
    assert (folder / "genai_config.json").is_file()
    assert {p.name for p in folder.iterdir()} == RUNTIME_FILES


@pytest.mark.parametrize("name", MODELS)
def test_genai_config_defaults_to_greedy_over_the_whole_context(name):
    config = json.loads((BUNDLED / name / "genai_config.json").read_text())
    assert config["model"]["type"] == "qwen2"
    assert config["model"]["context_length"] == 4096
    assert config["search"]["max_length"] == config["model"]["context_length"]
    assert config["search"]["do_sample"] is False
    assert config["search"]["num_beams"] == 1


def test_chat_template_is_chatml(bundled):
    _, _, tokenizer = bundled
    prompt = tokenizer.apply_chat_template(json.dumps(MESSAGES), add_generation_prompt=True)
    assert prompt == CHATML
    ids = list(tokenizer.encode(prompt))
    # The ChatML markers must be single special tokens, not spelled out byte by byte.
    start, end = tokenizer.to_token_id("<|im_start|>"), tokenizer.to_token_id("<|im_end|>")
    assert ids.count(start) == 3 and ids.count(end) == 2
    assert list(tokenizer.eos_token_ids) == [end]
    # Decoding skips special tokens, so only the roles and contents come back.
    plain = CHATML.replace("<|im_start|>", "").replace("<|im_end|>", "")
    assert tokenizer.decode(ids) == plain


def test_greedy_generation_is_non_empty_and_repeatable(bundled):
    _, model, tokenizer = bundled
    prompt = tokenizer.apply_chat_template(json.dumps(MESSAGES), add_generation_prompt=True)
    first = generate(model, tokenizer, prompt)
    second = generate(model, tokenizer, prompt)
    assert first == second
    # End tokens are masked out of the model's output layer, so every reply runs to the limit.
    assert len(first) == NEW_TOKENS
    assert set(first).isdisjoint(tokenizer.eos_token_ids)
    text = tokenizer.decode(first)
    assert text.strip()
    assert text == tokenizer.decode(second)
    assert "\ufffd" not in text and all(ch.isprintable() or ch == "\n" for ch in text)


def test_make_defaults_keep_builds_out_of_the_runtime():
    from ops.models.tinymodel import make

    args = make.parse_args([])
    assert args.name == "tiny-fp32"
    assert args.out == make.REPO / ".cache" / "models" / "tiny-fp32"
    assert args.builder_venv == make.REPO / ".cache" / "tinymodel-builder"
    # Unpinned, pip would pick a multi-GB CUDA torch and drifting versions of everything else.
    assert all("==" in requirement for requirement in make.BUILDER_REQUIREMENTS)


def test_make_refuses_to_replace_a_folder_that_is_not_a_model(tmp_path, capsys):
    from ops.models.tinymodel import make

    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    venv_dir = tmp_path / "builder"
    code = make.main(["--out", str(tmp_path), "--builder-venv", str(venv_dir)])
    assert code == 2
    assert "is not a model folder" in capsys.readouterr().err
    assert precious.read_text() == "keep me"
    assert not venv_dir.exists()
