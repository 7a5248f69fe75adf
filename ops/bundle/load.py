"""``ops bundle load``: verify a bundle whole, then import its images, models and wheels, and register them.

Nothing changes before the whole archive has been read and every member checked against the
manifest (:func:`ops.archive.verify`). Then models, wheels and the profile are staged in hidden
folders beside where they go; the images (the archive's last member) are streamed into
``docker load``; only when that worked are the staged files moved into place:

* models: ``<OPS_CACHE>/models/<folder>`` (where ``ops`` looks for a built recipe model; a folder
  already there is kept);
* wheels: ``<OPS_CACHE>/wheelhouse`` (``pip install --no-index --find-links`` it);
* the profile: ``<OPS_HOME>/bundles/<file>``;
* the record of what was loaded: ``<OPS_HOME>/bundles/loaded.json`` (:mod:`ops.bundle.registry`).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ops import archive, bundle
from ops.archive import ArchiveError
from ops.bundle import registry, wheels
from ops.bundle.create import Meter, NoMeter, Say
from ops.errors import DockerError, OpsError
from ops.settings import Settings

_TAMPERED = "the bundle was changed after it was made: use another copy; nothing was changed"


@dataclass(frozen=True)
class LoadResult:
    """What ``ops bundle load`` put where."""

    path: Path
    profile: str
    seconds: float
    images: list[str]
    models: list[str]  # folders in the model cache
    models_kept: list[str]  # folders that were there already
    wheelhouse: str | None
    install_command: str | None
    profile_file: str
    up_command: str
    record: str
    left_out: list[dict[str, str]]
    #: What may not fit this machine: another ops version, wheels of another platform.
    warnings: list[str]


def wheelhouse(settings: Settings) -> Path:
    """Where loaded wheels go."""
    return settings.cache / "wheelhouse"


def load(
    path: Path, settings: Settings | None = None, *, say: Say = lambda _line: None, meter: Meter | None = None
) -> LoadResult:
    """Load the bundle at ``path``; see the module's docstring. Raises :class:`OpsError` with nothing changed."""
    settings = settings or Settings.from_env()
    meter = meter or NoMeter()
    started = time.monotonic()
    path = Path(path).expanduser()
    meter.phase(f"verifying {path.name}", path.stat().st_size if path.is_file() else None)
    manifest = archive.verify(path, kind=bundle.KIND, progress=meter.advance)
    meta = manifest.meta
    images = _meta_list(meta, "images", path)
    _check_names(manifest, path)

    client = None
    if images:
        if bundle.IMAGES_MEMBER not in manifest.files:
            raise ArchiveError(f"{path.name}: its manifest names images but it holds none", hint=_TAMPERED)
        from ops.docker_engine import connect

        client = connect(timeout=60, work_timeout=1800)  # before anything changes: no daemon, no change

    cache_models = settings.cache / "models"
    house = wheelhouse(settings)
    bundles_dir = settings.home / "bundles"
    for folder in (cache_models, house, bundles_dir):
        folder.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".bundle-load-", dir=settings.cache))
    loaded: list[str] = []
    try:
        meter.phase(f"loading {path.name}", manifest.payload_bytes)
        for name, stream, _size in archive.read_members(path, manifest):
            if name == bundle.IMAGES_MEMBER:
                assert client is not None  # the manifest names images, so there is a client
                if _all_here(client, images):  # only tags to set: the member is still read and checked
                    _retag(client, images)
                    loaded = [str(i["tag"]) for i in images]
                else:
                    loaded = _docker_load(client, stream, meter)
                continue
            target = stage / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as handle:
                while chunk := stream.read(1 << 20):
                    handle.write(chunk)
                    meter.advance(len(chunk))
        if client is not None:
            _check_loaded(client, images, path)
        placed, kept = _place_models(stage / bundle.MODELS_DIR, cache_models)
        wheel_names = _place_wheels(stage / bundle.WHEELS_DIR, house)
        profile_file = bundles_dir / PurePosixPath(str(meta.get("profile_file", ""))).name
        staged_profile = stage / str(meta.get("profile_file", ""))
        if staged_profile.is_file() and profile_file.name:
            os.replace(staged_profile, profile_file)
    finally:
        shutil.rmtree(stage, ignore_errors=True)

    record = registry.record(
        settings,
        {
            str(i["tag"]): {
                "id": str(i["id"]),
                "recipe": str(i.get("recipe", "")),
                "recipe_hash": str(i.get("recipe_hash", "")),
                "recipe_digest": str(i.get("recipe_digest", "")),
                "bundle": path.name,
            }
            for i in images
            if i.get("recipe_digest")
        },
        {
            "file": str(path.resolve()),
            "profile": meta.get("profile", ""),
            "created": manifest.created,
            "loaded": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ops_version": manifest.ops_version,
            "images": [str(i["tag"]) for i in images],
            "models": placed + kept,
        },
    )
    profile_name = str(meta.get("profile", ""))
    return LoadResult(
        path=path,
        profile=profile_name,
        seconds=time.monotonic() - started,
        images=[str(i["tag"]) for i in images] or loaded,
        models=placed,
        models_kept=kept,
        wheelhouse=str(house) if wheel_names else None,
        install_command=wheels.install_command(house) if wheel_names else None,
        profile_file=str(profile_file),
        up_command=f"ops up {_profile_ref(profile_name, profile_file, settings)}",
        record=str(record),
        left_out=[dict(x) for x in meta.get("left_out", []) if isinstance(x, dict)],
        warnings=_warnings(manifest, bool(wheel_names)),
    )


def _warnings(manifest: archive.Manifest, has_wheels: bool) -> list[str]:
    import ops

    found = []
    if manifest.ops_version != ops.__version__:
        found.append(
            f"made by ops {manifest.ops_version}, this is ops {ops.__version__}: install ops from the bundle's "
            "wheels so its recipes and model folders match (`ops doctor` says what is missing)"
        )
    platform = str((manifest.meta.get("wheels") or {}).get("platform", ""))
    if has_wheels and platform and platform != wheels.platform_tag():
        found.append(f"its wheels are for {platform}, this Python is {wheels.platform_tag()}")
    return found


def _meta_list(meta: dict[str, Any], key: str, path: Path) -> list[dict[str, Any]]:
    value = meta.get(key, [])
    if not isinstance(value, list) or not all(
        isinstance(v, dict) and "tag" in v and "id" in v for v in value
    ):
        raise ArchiveError(f"{path.name}: its manifest's {key} are not a bundle's", hint=_TAMPERED)
    return value


def _check_names(manifest: archive.Manifest, path: Path) -> None:
    """Every member lands inside its folder: no absolute names, no ``..`` (a rewritten manifest could)."""
    known = (bundle.MODELS_DIR, bundle.WHEELS_DIR, bundle.PROFILE_DIR)
    for name in manifest.files:
        parts = PurePosixPath(name).parts
        bad = name.startswith("/") or ".." in parts or "\\" in name
        if bad or not (name == bundle.IMAGES_MEMBER or (len(parts) >= 2 and parts[0] in known)):
            raise ArchiveError(f"{path.name}: member {name!r} is not one a bundle holds", hint=_TAMPERED)


def _docker_load(client, stream, meter: Meter) -> list[str]:
    """Stream one ``docker save`` tar into ``docker load``; the names it loaded."""
    import docker.errors
    import requests

    def chunks():
        while chunk := stream.read(1 << 20):
            meter.advance(len(chunk))
            yield chunk

    loaded: list[str] = []
    try:
        for message in client.api.load_image(chunks()):
            if "errorDetail" in message or "error" in message:
                detail = (message.get("errorDetail") or {}).get("message") or message.get("error")
                raise DockerError(
                    f"docker load failed: {detail}", hint="see the dockerd log; is the disk full?"
                )
            text = str(message.get("stream", ""))
            if text.startswith(("Loaded image: ", "Loaded image ID: ")):
                loaded.append(text.split(": ", 1)[1].strip())
    except ArchiveError:
        raise
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        cause = exc.__context__
        if isinstance(cause, ArchiveError):  # the member changed while it was read
            raise cause from None
        detail = getattr(exc, "explanation", None) or exc
        raise DockerError(
            f"docker load failed: {detail}", hint="see the dockerd log; is the disk full?"
        ) from None
    return loaded


def _all_here(client, images: list[dict[str, Any]]) -> bool:
    """Every image of the bundle is on this daemon already, by id (a second load, or a re-made tag)."""
    import docker.errors

    for image in images:
        try:
            client.images.get(str(image["id"]))
        except docker.errors.ImageNotFound:
            return False
    return True


def _retag(client, images: list[dict[str, Any]]) -> None:
    from docker.utils import parse_repository_tag

    for image in images:
        repository, tag = parse_repository_tag(str(image["tag"]))
        client.images.get(str(image["id"])).tag(repository, tag or "latest")


def _check_loaded(client, images: list[dict[str, Any]], path: Path) -> None:
    import docker.errors

    for image in images:
        try:
            found = client.images.get(str(image["tag"])).id
        except docker.errors.ImageNotFound:
            found = None
        if found != image["id"]:
            raise OpsError(
                f"{path.name}: after docker load, {image['tag']} is {found or 'missing'}, not {image['id'][:19]}",
                hint="the daemon did not keep the bundle's image: see the dockerd log and load again",
            )


def _place_models(staged: Path, cache_models: Path) -> tuple[list[str], list[str]]:
    placed: list[str] = []
    kept: list[str] = []
    if not staged.is_dir():
        return placed, kept
    from ops.models.recipes import is_built

    for folder in sorted(p for p in staged.iterdir() if p.is_dir()):
        target = cache_models / folder.name
        if is_built(target):
            kept.append(str(target))
            continue
        if target.exists():  # an unfinished build of the same key: the bundle's whole folder wins
            shutil.rmtree(target)
        os.replace(folder, target)
        placed.append(str(target))
    return placed, kept


def _place_wheels(staged: Path, house: Path) -> list[str]:
    if not staged.is_dir():
        return []
    names = []
    for wheel in sorted(staged.glob("*.whl")):
        os.replace(wheel, house / wheel.name)
        names.append(wheel.name)
    return names


def _profile_ref(name: str, copy: Path, settings: Settings) -> str:
    """The profile as ``ops up`` should be given it: its name when that finds it here, else the copy."""
    from ops.profiles.loader import resolve

    try:
        found = resolve(name, settings)
    except OpsError:
        return str(copy)
    try:
        same = copy.is_file() and found.read_bytes() == copy.read_bytes()
    except OSError:
        same = False
    return name if same else str(copy)
