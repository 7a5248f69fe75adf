"""The recipe builder's own virtual environment: torch (CPU), transformers and the ONNX exporter.

These are about 1.5 GB and the runtime must never depend on them, so they live in a virtual
environment of their own in the shared cache, created once and keyed by the pins below: a change
of pins makes a new one beside the old. A marker written last says it is complete; an
interrupted setup is removed and started again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import venv
from pathlib import Path

from ops.locks import file_lock
from ops.models.recipes.fetch import explain_pip_failure, require_space
from ops.models.support import builder_support

# Exact pins: the same recipe gives the same model next month. torch is the CPU wheel these
# machines keep on local disk; an unpinned torch pulls a multi-GB CUDA build.
REQUIREMENTS = (
    "torch==2.13.0",
    "transformers==5.24.0",
    "tokenizers==0.23.3",
    "gguf==0.19.0",
    "accelerate==1.15.0",
    "onnx==1.23.2",
    "onnx-ir==1.1.0",
    "onnxscript==0.7.2",
    "onnxruntime==1.31.0",
    "onnxruntime-genai==0.18.0",
)
#: What the environment holds once installed (to check free disk space first).
SIZE_BYTES = 2 * 1024**3


def folder(cache: Path) -> Path:
    """The environment for the current pins."""
    digest = hashlib.sha256("\n".join(REQUIREMENTS).encode()).hexdigest()[:12]
    return cache / "builder" / digest


def interpreter(env: Path) -> Path:
    """Where a virtual environment's Python is: ``Scripts\\python.exe`` on Windows, ``bin/python`` elsewhere."""
    return env / "Scripts" / "python.exe" if os.name == "nt" else env / "bin" / "python"


def python(cache: Path) -> Path | None:
    """The environment's interpreter when the environment is complete, else ``None``."""
    where = folder(cache)
    exe = interpreter(where)
    return exe if exe.exists() and (where / "ops-ready").is_file() else None


def ensure(cache: Path, log) -> Path:
    """The builder's interpreter, creating the environment first when needed; ``log`` gets pip's lines."""
    ready = python(cache)
    if ready is not None:
        return ready
    # Builds of different recipes or precisions may start together: one of them makes the environment.
    with file_lock(cache / "locks" / "builder.lock"):
        ready = python(cache)
        return ready if ready is not None else _create(cache, log)


def _create(cache: Path, log) -> Path:
    builder_support().require()  # no torch for Windows on Arm or Intel macOS: say so before downloading
    target = folder(cache)
    target.parent.mkdir(parents=True, exist_ok=True)
    require_space(target.parent, SIZE_BYTES, "the recipe builder's environment")
    # A venv is not relocatable (its scripts hold absolute paths), so it is made at its final path;
    # the `ops-ready` marker, written last, is what says it is complete.
    shutil.rmtree(target, ignore_errors=True)
    try:
        venv.EnvBuilder(with_pip=True).create(target)
        exe = interpreter(target)
        command = [str(exe), "-m", "pip", "install", "--disable-pip-version-check", *REQUIREMENTS]
        done = subprocess.run(command, capture_output=True, text=True)
        for line in (done.stdout + done.stderr).splitlines()[-3:]:
            log(line)
        if done.returncode != 0:
            raise explain_pip_failure(done.stdout + done.stderr, "the recipe builder's packages")
        (target / "ops-ready").write_text("\n".join(REQUIREMENTS) + "\n")
        return exe
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
