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
