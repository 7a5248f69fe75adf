"""Assemble the WebGPU demo's build context: this recipe plus onnxruntime-web's dist files.

The page must work with no internet, so onnxruntime-web is served by the demo itself instead of
a CDN. Its wasm files are tens of megabytes, so they are not committed; this script brings them:

1. ``npm pack onnxruntime-web@VERSION`` (the npm registry's ordinary client, exact pin) into a
   cache folder, unless a tarball with the pinned integrity is already there (then no network);
2. the tarball's sha512 is checked against the pin, so a changed or corrupted tarball fails here;
3. only the files the page loads are extracted, once, into ``CACHE/onnxruntime-web-VERSION/``;
4. ``OUT`` gets a copy of the recipe (``Dockerfile``, ``.dockerignore``, ``serve.py``, ``site/``)
   with those files in ``OUT/site/ort/``.

``OUT`` is then a complete Docker build context, and ``OUT/site`` a folder ``serve.py`` serves::

    python stacks/webgpu-demo/assemble.py --out build/webgpu-demo

Standard library only, and it never imports ``ops``: the image build in ``ops`` and the tests run
it as a script, and so can a person. A builder that takes a recipe folder plus extra files can
instead build ``stacks/webgpu-demo/`` itself with :func:`runtime_files` as the extra files.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

ORT_PACKAGE = "onnxruntime-web"
ORT_VERSION = "1.30.0"
# `npm view onnxruntime-web@1.30.0 dist.integrity`
ORT_INTEGRITY = (
    "sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ=="
)
# Two builds, and the page loads one: the WebGPU build (it runs wasm too) with its asyncify binary
# (27 MB) where an adapter is found, else the wasm-only build with its plain binary (14 MB), which
# starts about twice as fast. The e2e tests' request log checks that nothing else is fetched.
ORT_FILES = (
    "package/dist/ort.webgpu.min.mjs",
    "package/dist/ort-wasm-simd-threaded.asyncify.mjs",
    "package/dist/ort-wasm-simd-threaded.asyncify.wasm",
    "package/dist/ort.wasm.min.mjs",
    "package/dist/ort-wasm-simd-threaded.mjs",
    "package/dist/ort-wasm-simd-threaded.wasm",
    # The package ships no LICENSE file; its package.json names the licence (MIT) and version.
    "package/package.json",
)
RECIPE_FILES = ("Dockerfile", ".dockerignore", "serve.py")


class AssembleError(Exception):
    """The build context cannot be made; the message says what to do."""


def default_cache() -> Path:
    """Where npm tarballs are kept between runs: ``$XDG_CACHE_HOME/ops/npm`` or ``~/.cache/ops/npm``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ops" / "npm"


def integrity_of(path: Path) -> str:
    """The npm-style ``sha512-<base64>`` integrity string of a file."""
    digest = hashlib.sha512()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def ort_tarball(cache: Path) -> Path:
    """The pinned onnxruntime-web tarball in ``cache``, fetched with ``npm pack`` if missing."""
    tarball = cache / f"{ORT_PACKAGE}-{ORT_VERSION}.tgz"
    if tarball.is_file() and integrity_of(tarball) == ORT_INTEGRITY:
        return tarball
    npm = shutil.which("npm")
    if npm is None:
        raise AssembleError(
            f"npm is needed once to fetch {ORT_PACKAGE}@{ORT_VERSION} and is not on PATH: "
            f"install Node.js's npm (Debian: apt-get install npm), or put {tarball.name} into {cache}"
        )
    cache.mkdir(parents=True, exist_ok=True)
    spec = f"{ORT_PACKAGE}@{ORT_VERSION}"
    done = subprocess.run(
        [npm, "pack", spec, "--pack-destination", str(cache), "--json", "--silent"],
        capture_output=True,
        text=True,
        cwd=cache,
    )
    if done.returncode != 0 or not tarball.is_file():
        detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise AssembleError(f"npm pack {spec} failed (exit {done.returncode}): {' | '.join(detail)}")
    actual = integrity_of(tarball)
    if actual != ORT_INTEGRITY:
        tarball.unlink()
        raise AssembleError(f"{tarball.name} has integrity {actual}, expected the pinned {ORT_INTEGRITY}")
    return tarball


def extract_runtime(tarball: Path, dest: Path) -> list[Path]:
    """Write the files the page needs from ``tarball`` into ``dest`` (flat); return their paths."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    with tarfile.open(tarball, "r:gz") as archive:
        for member_name in ORT_FILES:
            # Read named members only: nothing in the tarball chooses where a file lands.
            member = archive.getmember(member_name)
            source = archive.extractfile(member)
            if source is None:
                raise AssembleError(f"{member_name} in {tarball.name} is not a regular file")
            target = dest / Path(member_name).name
            with source, target.open("wb") as out:
                shutil.copyfileobj(source, out)
            written.append(target)
    stamp = dest / "VERSION"
    stamp.write_text(_stamp())
    return [*written, stamp]


def _stamp() -> str:
    return f"{ORT_PACKAGE}@{ORT_VERSION} {ORT_INTEGRITY}\n"


def runtime_files(cache: Path | None = None) -> dict[str, Path]:
    """onnxruntime-web's files for a build context: ``{"site/ort/NAME": file in the cache}``.

    The files are extracted once into ``CACHE/onnxruntime-web-VERSION/``. This is what a builder
    that copies a recipe folder plus extra files needs (``ops.images.build``'s ``extra_files``).
    """
    cache = cache or default_cache()
    folder = cache / f"{ORT_PACKAGE}-{ORT_VERSION}"
    names = [Path(name).name for name in ORT_FILES] + ["VERSION"]
    stamp = folder / "VERSION"
    if not (stamp.is_file() and stamp.read_text() == _stamp() and all((folder / n).is_file() for n in names)):
        tarball = ort_tarball(cache)
        # Extract beside and rename: a concurrent or interrupted run never leaves half a folder.
        partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=cache))
        extract_runtime(tarball, partial)
        shutil.rmtree(folder, ignore_errors=True)
        try:
            partial.rename(folder)
        except OSError:
            shutil.rmtree(partial, ignore_errors=True)
            if not stamp.is_file():
                raise
    return {f"site/ort/{name}": folder / name for name in names}


def assemble(out: Path, cache: Path | None = None) -> Path:
    """Make ``out`` a complete build context (recipe + runtime); return ``out``.

    An existing ``out`` is replaced, so a stale runtime or model can never linger in it.
    """
    extra = runtime_files(cache)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in RECIPE_FILES:
        shutil.copy2(HERE / name, out / name)
    shutil.copytree(HERE / "site", out / "site", ignore=shutil.ignore_patterns("ort"))
    for arcname, source in extra.items():
        target = out / arcname
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: ``--out DIR [--cache DIR]``; prints a JSON summary."""
    parser = argparse.ArgumentParser(description="Assemble the WebGPU demo's build context.")
    parser.add_argument("--out", type=Path, required=True, help="Folder to (re)create as the build context.")
    parser.add_argument(
        "--cache", type=Path, default=None, help=f"npm tarball cache (default {default_cache()})."
    )
    args = parser.parse_args(argv)
    try:
        out = assemble(args.out.resolve(), args.cache)
    except AssembleError as exc:
        print(f"assemble: {exc}", file=sys.stderr)
        return 1
    files = sorted(p for p in out.rglob("*") if p.is_file())
    summary = {
        "context": str(out),
        "site": str(out / "site"),
        "runtime": f"{ORT_PACKAGE}@{ORT_VERSION}",
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
