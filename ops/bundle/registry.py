"""What ``ops bundle load`` loaded, remembered so ``ops up`` uses it instead of building.

A loaded image keeps its id and its ``ops.recipe-hash`` label, so on the machine that made the
bundle it is simply current. On another machine the recipe hash may differ although the recipe
is the same: it covers the host's CA bundle and files the host supplies (Open WebUI's torch wheel,
which an offline machine does not have). So each loaded build is recorded here with its image id
and a digest of its recipe folder's own files; :func:`trusted` says the image at a tag is the one
a bundle loaded for the recipe as it is now. A rebuild (a new id) or a changed recipe (another
digest) ends the trust, and the usual recipe hash decides again.

The record is ``<OPS_HOME>/bundles/loaded.json``: ``{"images": {tag: {...}}, "bundles": [...]}``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ops.settings import Settings

_SKIPPED = ("__pycache__", ".git", ".pytest_cache", ".DS_Store")


def path(settings: Settings) -> Path:
    """The record's file."""
    return settings.home / "bundles" / "loaded.json"


def recipe_digest(recipe_dir: Path) -> str:
    """sha256 of a recipe folder's own files (names and contents), independent of the host."""
    digest = hashlib.sha256()
    for file in sorted(p for p in Path(recipe_dir).rglob("*") if p.is_file()):
        rel = file.relative_to(recipe_dir)
        if any(part in _SKIPPED for part in rel.parts):
            continue
        digest.update(f"\n{rel.as_posix()}\0".encode())
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def read(settings: Settings) -> dict[str, Any]:
    """The record (empty when nothing was loaded, or when the file cannot be read)."""
    try:
        data = json.loads(path(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"images": {}, "bundles": []}
    if not isinstance(data, dict):
        return {"images": {}, "bundles": []}
    data.setdefault("images", {})
    data.setdefault("bundles", [])
    return data


def record(settings: Settings, images: dict[str, dict[str, str]], bundle: dict[str, Any]) -> Path:
    """Add ``images`` (tag -> id, recipe, recipe_digest, ...) and the bundle's summary; returns the file."""
    data = read(settings)
    data["images"].update(images)
    data["bundles"].append(bundle)
    target = path(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    part.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(part, target)
    return target


def trusted(client, tag: str, recipe_dir: Path | None, settings: Settings | None = None) -> str | None:
    """A one-line reason when the image at ``tag`` is one a bundle loaded for ``recipe_dir`` as it is
    now (same image id, same recipe files); else None."""
    if not tag or recipe_dir is None or not Path(recipe_dir).is_dir():
        return None
    entry = read(settings or Settings.from_env())["images"].get(tag)
    if not isinstance(entry, dict):
        return None
    import docker.errors
    import requests

    try:
        image_id = client.images.get(tag).id
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return None
    if image_id != entry.get("id"):
        return None
    with contextlib.suppress(OSError):
        if recipe_digest(Path(recipe_dir)) == entry.get("recipe_digest"):
            return (
                f"{tag} was loaded from bundle {entry.get('bundle', '?')} for recipe {Path(recipe_dir).name}"
            )
    return None
