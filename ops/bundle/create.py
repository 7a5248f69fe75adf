"""``ops bundle create``: everything a machine with no network needs for a profile, in one archive.

What goes in is decided from the plan (:func:`contents`): the images its enabled services run and
the base image (recipe hashes include the base's id, so a loaded build counts as current), its
recipe models' folders, the wheels of ``ops`` and its pins, the profile file. Images and recipe
models not made yet are made first (as ``ops up`` would), while the network is there. The archive
is uncompressed by default: image layers are compressed already (gzip saves about a third of an
image and costs more than a minute each way on 2 cores, see the README's figures).

Nothing is left behind on failure: work files live in a temporary folder beside the output, and
the archive is written to ``FILE.part`` and renamed at the end (:mod:`ops.archive`).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Protocol

from ops import archive, bundle, labels
from ops.bundle import registry, wheels
from ops.errors import DockerError, UsageError
from ops.plan import StackPlan
from ops.settings import Settings

Say = Callable[[str], None]


class Meter(Protocol):
    """Where byte counts go (the CLI's progress bar): a phase with its expected total, then bytes."""

    def phase(self, label: str, total: int | None) -> None: ...

    def advance(self, count: int) -> None: ...


class NoMeter:
    """A meter that shows nothing."""

    def phase(self, label: str, total: int | None) -> None:
        pass

    def advance(self, count: int) -> None:
        pass


@dataclass(frozen=True)
class BundledImage:
    """One image in the bundle, as the manifest records it."""

    tag: str
    id: str
    services: tuple[str, ...] = ()
    recipe: str = ""
    recipe_hash: str = ""
    recipe_digest: str = ""


@dataclass(frozen=True)
class BundledModel:
    """One recipe model's folder in the bundle."""

    alias: str
    folder: str  # the folder's name in the model cache
    bytes: int


@dataclass(frozen=True)
class LeftOut:
    """Something the profile uses that the bundle does not carry, and why."""

    what: str
    reason: str


@dataclass(frozen=True)
class Contents:
    """What a bundle of a plan carries, before anything is made or written."""

    services: tuple[str, ...]
    models: tuple[tuple[str, Path], ...]  # (alias, recipe model folder)
    left_out: tuple[LeftOut, ...]


@dataclass(frozen=True)
class CreateResult:
    """What ``ops bundle create`` wrote."""

    path: Path
    profile: str
    bytes: int
    seconds: float
    compressed: bool
    images: list[BundledImage]
    models: list[BundledModel]
    wheels: list[str]
    left_out: list[LeftOut] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        """The commands that install ops on a fresh machine from the bundle itself, then load it."""
        name = self.path.name
        if not self.wheels:
            return f"ops bundle load {name}"
        unpack = f"tar -x{'z' if self.compressed else ''}f {name} {bundle.WHEELS_DIR}"
        return f"{unpack} && {wheels.install_command(Path(bundle.WHEELS_DIR))} && ops bundle load {name}"


def contents(plan: StackPlan) -> Contents:
    """What a bundle of ``plan`` holds; a plan with nothing to carry is a usage error."""
    services = tuple(n for n, s in plan.enabled.items() if s.declared_image)
    models: list[tuple[str, Path]] = []
    left: list[LeftOut] = []
    for model in plan.models:
        spec = model.spec
        if model.source == "recipe" and model.folder is not None:
            models.append((model.alias, model.folder))
        elif model.source == "local" and spec is not None and str(spec.path).startswith("bundled:"):
            left.append(LeftOut(f"model {model.alias}", f"{spec.path} ships with ops itself"))
        elif model.source == "local":
            left.append(
                LeftOut(f"model {model.alias}", f"a folder of this machine ({model.where}): copy it yourself")
            )
        elif model.source == "catalog":
            optional = " (optional: skipped offline)" if spec is not None and spec.optional else ""
            left.append(
                LeftOut(
                    f"model {model.alias}", f"from the Foundry catalog, which serves it only online{optional}"
                )
            )
        else:
            left.append(LeftOut(f"model {model.alias}", f"served by {model.where}, not by this machine"))
    if not services and not models:
        raise UsageError(
            f"profile {plan.name} has nothing to carry offline: no service image and no recipe model",
            hint="bundle a profile with services or `recipe:` models (e.g. `ops bundle create offline`)",
        )
    return Contents(services, tuple(models), tuple(left))


def check_output(out: Path) -> Path:
    """The output path, refused (one line) when it exists, is a folder, or its folder is not writable."""
    out = Path(out).expanduser()
    if out.is_dir():
        raise UsageError(f"{out} is a folder", hint="give the bundle's file name, e.g. -o workshop.opsbundle")
    if out.exists():
        raise UsageError(f"{out} exists already", hint="choose another name, or remove it first")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"folder {parent} does not exist", hint="create it, or write the bundle elsewhere")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write in {parent}", hint="write the bundle to a folder you own")
    return out


def create(
    plan: StackPlan,
    out: Path,
    settings: Settings | None = None,
    *,
    compress: bool = False,
    include_wheels: bool = True,
    say: Say = lambda _line: None,
    meter: Meter | None = None,
    build_progress=None,
) -> CreateResult:
    """Write the bundle of ``plan`` to ``out``; see the module's docstring."""
    from ops.docker_engine import connect
    from ops.models.recipes import build as recipe_build

    settings = settings or Settings.from_env()
    meter = meter or NoMeter()
    started = time.monotonic()
    out = check_output(out)
    chosen = contents(plan)
    if include_wheels:
        wheels.checkout()  # refuse at once, before anything is made, when there is no checkout

    if chosen.models:
        recipe_build.ensure_models(plan.loaded, settings.cache, build_progress)
    images: list[BundledImage] = []
    client = connect(timeout=60, work_timeout=1800) if chosen.services else None
    if client is not None:
        images = _images(client, plan, chosen.services, say)

    with tempfile.TemporaryDirectory(prefix=".ops-bundle-", dir=out.parent) as work:
        workdir = Path(work)
        wheel_files: list[Path] = []
        if include_wheels:
            (workdir / "wheels").mkdir()
            wheel_files = wheels.build(workdir / "wheels", say)
        images_tar = None
        if images:
            images_tar = workdir / "images.tar"
            _save(client, [i.tag for i in images], images_tar, meter)
        models = [_model(alias, folder) for alias, folder in chosen.models]
        profile_member = f"{bundle.PROFILE_DIR}/{plan.path.name}"
        meta = {
            "profile": plan.name,
            "profile_file": profile_member,
            "images": [_plain(i) for i in images],
            "models": [_plain(m) for m in models],
            "left_out": [_plain(x) for x in chosen.left_out],
            "wheels": {
                "platform": wheels.platform_tag(),
                "python": sys.version.split()[0],
                "files": [w.name for w in wheel_files],
            },
        }
        total = sum(m.bytes for m in models) + sum(w.stat().st_size for w in wheel_files)
        total += images_tar.stat().st_size if images_tar else 0
        meter.phase(f"writing {out.name}", total)
        writer = archive.ArchiveWriter(out, bundle.KIND, meta, compress=compress, progress=meter.advance)
        with writer:
            writer.add_file(profile_member, plan.path)
            for (_alias, folder), model in zip(chosen.models, models, strict=True):
                for file in sorted(p for p in folder.rglob("*") if p.is_file()):
                    rel = file.relative_to(folder).as_posix()
                    writer.add_file(f"{bundle.MODELS_DIR}/{model.folder}/{rel}", file)
            for wheel in wheel_files:
                writer.add_file(f"{bundle.WHEELS_DIR}/{wheel.name}", wheel)
            if images_tar is not None:
                writer.add_file(bundle.IMAGES_MEMBER, images_tar)
    return CreateResult(
        path=out,
        profile=plan.name,
        bytes=out.stat().st_size,
        seconds=time.monotonic() - started,
        compressed=compress,
        images=images,
        models=models,
        wheels=[w.name for w in wheel_files],
        left_out=list(chosen.left_out),
    )


def _images(client, plan: StackPlan, services: tuple[str, ...], say: Say) -> list[BundledImage]:
    """Make each service's image available (as ``ops up`` does) and describe it; the base image last."""
    from ops.images.base import BASE_IMAGE
    from ops.images.service import ensure_service_image

    found: dict[str, BundledImage] = {}
    for name in services:
        service = plan.services[name]
        tag, image_id, _source = ensure_service_image(client, service, say)
        previous = found.get(tag)
        if previous is not None:
            found[tag] = replace(previous, services=(*previous.services, name))
            continue
        image_labels = client.images.get(tag).labels or {}
        recipe = service.recipe_dir
        built = bool(image_labels.get(labels.RECIPE_HASH)) and recipe is not None and recipe.is_dir()
        found[tag] = BundledImage(
            tag=tag,
            id=image_id,
            services=(name,),
            recipe=image_labels.get(labels.RECIPE, "") if built else "",
            recipe_hash=image_labels.get(labels.RECIPE_HASH, "") if built else "",
            recipe_digest=registry.recipe_digest(recipe) if built and recipe is not None else "",
        )
    if any(i.recipe_hash for i in found.values()) and BASE_IMAGE not in found:
        try:
            found[BASE_IMAGE] = BundledImage(tag=BASE_IMAGE, id=client.images.get(BASE_IMAGE).id)
        except Exception:  # noqa: BLE001  (no base image: the builds are carried, their base is not needed)
            say(f"{BASE_IMAGE} is not on this machine: left out (the loaded builds do not need it)")
    return list(found.values())


def _save(client, tags: list[str], target: Path, meter: Meter) -> None:
    """``docker save`` of ``tags`` (shared layers once) into ``target``."""
    import docker.errors
    import requests

    total = 0
    for tag in tags:
        total += int((client.images.get(tag).attrs or {}).get("Size") or 0)
    meter.phase(f"docker save of {len(tags)} image(s)", total)
    try:
        api = client.api
        response = api._get(api._url("/images/get"), params={"names": tags}, stream=True)
        api._raise_for_status(response)
        with open(target, "wb") as handle:
            for chunk in response.iter_content(1 << 20):
                handle.write(chunk)
                meter.advance(len(chunk))
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        detail = getattr(exc, "explanation", None) or exc
        raise DockerError(
            f"docker save of {', '.join(tags)} failed: {detail}", hint="see the dockerd log"
        ) from None
    except OSError as exc:
        raise UsageError(
            f"cannot write the images to {target.parent}: {exc.strerror}", hint="free some disk space there"
        ) from None


def _model(alias: str, folder: Path) -> BundledModel:
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return BundledModel(alias, folder.name, size)


def _plain(value) -> dict:
    data = asdict(value)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}
