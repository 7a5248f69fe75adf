"""What of the disk ``ops`` can give back: its own images that nothing uses any more.

``ops`` made an image when it carries ``ops.stage`` (every stage of a recipe build, see
:mod:`ops.images.stages`) or ``ops.recipe-hash`` (a recipe's finished image). Of those, two
sorts can go:

* a **stage** image: untagged, the leftover of a multi-stage build (the legacy builder keeps each
  stage's last image) or of a build that failed;
* the same leftover made before stages were labelled: untagged, with no label but the base
  image's, and made by the last ``RUN`` of a non-final stage of a recipe that a profile uses (the
  legacy builder records each image's command; see :func:`ops.images.stages.stage_end_commands`);
* a **replaced build**: a recipe's finished image that lost its tag to a newer build (the build
  removes it at once, but not while a container still used it);
* an **unused build**: a tagged recipe image that no profile on the search path names (as its
  image or its build tag). Only when every profile could be read: a profile that does not load
  might name it.

Never one that a container (running or stopped) uses, one a profile names, or one ``ops`` did not
make: an image with only the labels it inherited from the ops base image (``ops.managed``) may be
anyone's image built ``FROM ops-base``. The base image itself is what every recipe builds on.
:func:`select` decides from plain records, so the rules are tested without a daemon;
:func:`survey` reads the daemon and the profiles, :func:`prune` removes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import docker
import requests
from docker.errors import DockerException, ImageNotFound

from ops import labels
from ops.errors import DockerError
from ops.images.stages import normalized_command, stage_end_commands
from ops.settings import Settings

# What the ops base image carries (ops.images.base), and so every image built on it.
_BASE_LABELS = (labels.MANAGED, "ops.base.source")

Reason = Literal["stage", "replaced-build", "unused-build"]


@dataclass(frozen=True)
class ImageRecord:
    """One top-level image as ``docker system df`` reports it."""

    id: str
    tags: tuple[str, ...]
    labels: Mapping[str, str]
    size: int
    #: Bytes in layers other images share too; ``None`` when the daemon did not say.
    shared_size: int | None = None
    #: Containers (running or stopped) made from it.
    containers: int = 0
    #: The shell command of the build step that made it (read only where it decides something).
    created_by: str | None = None

    @property
    def unique_size(self) -> int:
        """Bytes that removing this image alone frees."""
        if self.shared_size is None or self.shared_size < 0:
            return self.size
        return max(self.size - self.shared_size, 0)


@dataclass(frozen=True)
class Reclaimable:
    """An image ``ops`` made that nothing uses: why it can go, and how much that frees."""

    id: str
    tags: tuple[str, ...]
    recipe: str | None
    stage: str | None
    reason: Reason
    bytes: int


@dataclass(frozen=True)
class Survey:
    """The reclaimable images, and what limited the search."""

    images: tuple[Reclaimable, ...]
    #: Profiles that did not load: while any does not, tagged builds are kept (it might name them).
    unreadable_profiles: tuple[str, ...] = ()

    @property
    def bytes(self) -> int:
        """At least this much is freed by removing them all (shared layers are not counted)."""
        return sum(item.bytes for item in self.images)


@dataclass(frozen=True)
class PruneResult:
    """What ``ops images prune`` removed, and what the daemon refused to remove."""

    removed: tuple[Reclaimable, ...]
    kept: tuple[tuple[Reclaimable, str], ...] = field(default=())
    unreadable_profiles: tuple[str, ...] = ()

    @property
    def bytes(self) -> int:
        """Bytes freed, at least."""
        return sum(item.bytes for item in self.removed)


def is_ops_image(image_labels: Mapping[str, str]) -> bool:
    """True for an image that an ``ops`` recipe build made (a stage of it, or its result)."""
    return labels.STAGE in image_labels or labels.RECIPE_HASH in image_labels


def is_unlabelled_leftover(image: ImageRecord) -> bool:
    """Untagged, with no label but those of the ops base image: maybe an unlabelled stage of ours."""
    keys = set(image.labels or {})
    return not image.tags and labels.MANAGED in keys and keys <= set(_BASE_LABELS)


def select(
    images: Iterable[ImageRecord],
    in_use: Iterable[str],
    *,
    profiles_complete: bool = True,
    stage_commands: Mapping[str, str] | None = None,
) -> list[Reclaimable]:
    """The images of ``images`` that can go, largest first.

    ``in_use`` holds the references (``name:tag``) and ids that profiles name; ``profiles_complete``
    is False when some profile could not be read, and then only untagged images are chosen.
    ``stage_commands`` maps the normalized last ``RUN`` of each non-final stage of the recipes in
    use to the recipe's name: an unlabelled leftover made by one of them is a stage image too.
    """
    used = set(in_use)
    chosen = []
    for image in images:
        found = dict(image.labels or {})
        if image.containers > 0 or image.id in used or any(tag in used for tag in image.tags):
            continue
        legacy = (
            is_unlabelled_leftover(image)
            and image.created_by is not None
            and normalized_command(image.created_by) in (stage_commands or {})
        )
        if legacy:
            found[labels.RECIPE] = (stage_commands or {})[normalized_command(image.created_by or "")]
            found[labels.STAGE] = "(unlabelled)"
        elif not is_ops_image(found):
            continue
        if not image.tags and labels.RECIPE_HASH in found:
            reason: Reason = "replaced-build"
        elif not image.tags and labels.STAGE in found:
            reason = "stage"
        elif image.tags and labels.RECIPE_HASH in found and profiles_complete:
            reason = "unused-build"
        else:
            continue
        chosen.append(
            Reclaimable(
                id=image.id,
                tags=image.tags,
                recipe=found.get(labels.RECIPE),
                stage=found.get(labels.STAGE),
                reason=reason,
                bytes=image.unique_size,
            )
        )
    return sorted(chosen, key=lambda item: (-item.bytes, item.id))


def records(client: docker.DockerClient) -> list[ImageRecord]:
    """Every top-level image, with shared sizes and container counts (one ``system df`` call)."""
    try:
        answer = client.df()
    except (DockerException, requests.exceptions.RequestException) as exc:
        raise DockerError(f"cannot list images: {exc}", hint="Is the Docker daemon healthy?") from exc
    result = []
    for raw in answer.get("Images") or []:
        tags = tuple(t for t in (raw.get("RepoTags") or []) if t != "<none>:<none>")
        shared = raw.get("SharedSize")
        record = ImageRecord(
            id=str(raw["Id"]),
            tags=tags,
            labels=dict(raw.get("Labels") or {}),
            size=int(raw.get("Size") or 0),
            shared_size=int(shared) if shared is not None else None,
            containers=max(int(raw.get("Containers") or 0), 0),
        )
        if is_unlabelled_leftover(record):
            record = replace(record, created_by=_created_by(client, record.id))
        result.append(record)
    return result


def _created_by(client: docker.DockerClient, image_id: str) -> str | None:
    """The shell command of the build step that made an image, from the legacy builder's record."""
    try:
        attrs = client.api.inspect_image(image_id)
    except (DockerException, requests.exceptions.RequestException):
        return None
    cmd = (attrs.get("ContainerConfig") or {}).get("Cmd") or []
    # ["/bin/sh", "-c", "<command>"], after "|<n>" and the build args a RUN saw, if any.
    if "-c" in cmd and cmd.index("-c") + 1 < len(cmd):
        return str(cmd[cmd.index("-c") + 1])
    return None


@dataclass(frozen=True)
class ProfileUse:
    """What the profiles on the search path name: images and build tags, and recipe Dockerfiles."""

    names: frozenset[str]
    dockerfiles: tuple[tuple[str, Path], ...]  # (recipe name, its Dockerfile)
    unreadable: tuple[str, ...]

    def stage_commands(self) -> dict[str, str]:
        """Normalized last ``RUN`` of each non-final stage of the recipes -> the recipe's name."""
        found = {}
        for recipe, path in self.dockerfiles:
            with contextlib.suppress(OSError, UnicodeDecodeError):
                for command in stage_end_commands(path.read_text(encoding="utf-8")):
                    found[command] = recipe
        return found


def profiles_use(settings: Settings | None = None) -> ProfileUse:
    """Every image reference, build tag and recipe a profile on the search path names.

    Disabled services count too: enabling one must not need a rebuild.
    """
    from ops import plan as stack_plan
    from ops.errors import OpsError
    from ops.profiles.loader import discover

    names: set[str] = set()
    dockerfiles: set[tuple[str, Path]] = set()
    unreadable = []
    for ref in discover(settings):
        try:
            plan = stack_plan.load(str(ref.path), settings, ask_catalog=False)
        except OpsError:
            unreadable.append(ref.name)
            continue
        for service in plan.services.values():
            names.update(n for n in (service.image, service.build_tag) if n)
            if service.recipe_dir is not None:
                dockerfiles.add((service.recipe_dir.name, service.recipe_dir / service.dockerfile))
    return ProfileUse(frozenset(names), tuple(sorted(dockerfiles)), tuple(unreadable))


def survey(client: docker.DockerClient, settings: Settings | None = None) -> Survey:
    """The images ``ops`` made that nothing uses now, read from the daemon and the profiles."""
    from ops.images.base import BASE_IMAGE

    use = profiles_use(settings)
    found = select(
        records(client),
        {*use.names, BASE_IMAGE},
        profiles_complete=not use.unreadable,
        stage_commands=use.stage_commands(),
    )
    return Survey(tuple(found), use.unreadable)


def prune(client: docker.DockerClient, found: Survey) -> PruneResult:
    """Remove the images of ``found`` (never forced: the daemon keeps one a container uses)."""
    removed, kept = [], []
    for item in found.images:
        try:
            if item.reason == "stage" and client.images.get(item.id).tags:
                # Tagged since the survey: removing it by id would delete a named image.
                kept.append((item, "it has been tagged meanwhile"))
                continue
            # Untag every name first: removing by id refuses an image with several tags.
            for tag in item.tags:
                client.images.remove(tag, force=False)
            with contextlib.suppress(ImageNotFound):
                client.images.remove(item.id, force=False)
        except ImageNotFound:
            continue  # gone already (removed with a stage image it was the parent of)
        except (DockerException, requests.exceptions.RequestException) as exc:
            kept.append((item, _first_line(str(getattr(exc, "explanation", None) or exc))))
            continue
        removed.append(item)
    return PruneResult(tuple(removed), tuple(kept), found.unreadable_profiles)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"
