"""A service's version: what ``ops upgrade`` changes, what a built image's tag and a container's label say.

Where a version comes from:

- a built kind names the build argument that carries it (``ServiceKind.version_arg``, Open WebUI's
  ``OPEN_WEBUI_VERSION``); its default is the recipe Dockerfile's ``ARG <name>=<default>``. The
  argument is passed to the build only when the version differs from that default, so the default
  version's recipe hash is the one it always had (a cached build still counts);
- a service that runs a named image (``image: name:tag``) has the image's tag as its version;
- the profile may say ``services.X.version``; ``ops upgrade --to`` keeps its choice in the stack's
  state (:func:`save_override`), which applies while the profile's version stays what it was.

A built image's tag carries the version (``ops-<recipe folder>:<version>``), so two versions of one
recipe coexist while an upgrade tries the new one. A service without a version keeps ``:local``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from ops.errors import UsageError
from ops.private import open_private, private_dir

if TYPE_CHECKING:
    from ops.services import ServiceKind
    from ops.settings import Settings


class Versioned(Protocol):
    """What a version is read from and applied to (``ops.plan.ResolvedService``, a frozen dataclass)."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> ServiceKind: ...
    @property
    def image(self) -> str: ...
    @property
    def build_tag(self) -> str: ...
    @property
    def recipe_dir(self) -> Path | None: ...
    @property
    def dockerfile(self) -> str: ...
    @property
    def build_args(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def version(self) -> str: ...
    @property
    def profile_version(self) -> str: ...


Service = TypeVar("Service", bound=Versioned)

#: A version is a Docker tag: letters, digits, ``_``, ``.`` and ``-``, at most 128, not starting with ``.`` or ``-``.
PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
OVERRIDES_FILE = "versions.json"
_ARG = re.compile(r"^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\S+)\s*$", re.I)


def check(version: str, what: str = "version") -> str:
    """``version`` when it is a valid version, else a one-line :class:`UsageError`."""
    if not PATTERN.match(version):
        raise UsageError(
            f"{what} {version!r} is not a valid version",
            hint="a version is letters, digits, '.', '-' and '_' (a Docker tag), e.g. 0.12.4",
        )
    return version


def dockerfile_default(recipe_dir: Path, dockerfile: str, arg: str) -> str | None:
    """The default the recipe's Dockerfile gives build argument ``arg`` (its first ``ARG arg=...``)."""
    try:
        text = (recipe_dir / dockerfile).read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        match = _ARG.match(line)
        if match and match.group(1) == arg:
            return match.group(2).strip("\"'")
    return None


def image_tag(image: str) -> str | None:
    """The tag of image reference ``image`` (None for no tag or a digest reference)."""
    if "@" in image:
        return None
    name, _, tag = image.rpartition(":")
    return tag if name and "/" not in tag else None


def with_tag(image: str, tag: str) -> str:
    """``image`` with its tag replaced by (or given) ``tag``."""
    return f"{image[: -len(t) - 1] if (t := image_tag(image)) else image}:{tag}"


def _repository(image: str) -> str:
    return image[: -len(t) - 1] if (t := image_tag(image)) else image


def built_version(service: Versioned) -> bool:
    """True when the service's version is its recipe's build argument (not an image tag)."""
    kind = service.kind
    if not (kind.version_arg and service.recipe_dir):
        return False
    return not service.image or bool(kind.image and _repository(service.image) == _repository(kind.image))


def apply(service: Service, wanted: str | None = None) -> Service:
    """``service`` running version ``wanted`` (None: the profile's or the default); nothing changes
    for a service without a version concept, where a ``wanted`` version is a :class:`UsageError`."""
    where = f"services.{service.name}.version"
    if wanted is not None:
        check(wanted, where)
    kind = service.kind
    if built_version(service):
        assert kind.version_arg is not None and service.recipe_dir is not None
        arg = kind.version_arg
        args = dict(service.build_args)
        given = args.pop(arg, None)
        default = dockerfile_default(service.recipe_dir, service.dockerfile, arg)
        if wanted and given and wanted != given and service.version != given:
            raise UsageError(
                f"{where} {wanted} contradicts build.args.{arg} {given}",
                hint=f"set the version in one place: remove build.args.{arg}",
            )
        version = wanted or given or default or ""
        if not version:
            return service
        if version != default:
            args[arg] = version
        image = with_tag(kind.image, kind.version_tag.format(version)) if kind.image else service.image
        return replace(
            service,
            version=version,
            build_args=tuple(sorted(args.items())),
            build_tag=f"ops-{service.recipe_dir.name}:{version}",
            image=image,
        )
    tag = image_tag(service.image) if service.image else None
    if tag is None:
        if wanted is not None:
            raise UsageError(
                f"service {service.name} has no version to set",
                hint="a version is an image's tag, or the build argument its kind names; "
                "this service has neither",
            )
        return service
    version = wanted or tag
    return replace(service, version=version, image=with_tag(service.image, version))


# --- The version `ops upgrade` chose, kept in the stack's state ------------------------------------


def overrides_path(stack: str, settings: Settings | None = None) -> Path:
    """Where ``ops upgrade`` keeps the versions it switched to: ``<state>/versions.json``."""
    from ops.state import StackState

    return StackState.for_stack(stack, settings).root / OVERRIDES_FILE


def overrides(stack: str, settings: Settings | None = None) -> dict[str, tuple[str, str]]:
    """service -> (version ``ops upgrade`` switched to, the profile's version it was set over)."""
    return read_overrides(overrides_path(stack, settings))


def read_overrides(path: Path) -> dict[str, tuple[str, str]]:
    """The overrides kept in ``path`` (nothing when it is missing or unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found = {}
    for name, entry in (data if isinstance(data, dict) else {}).items():
        if isinstance(entry, dict) and PATTERN.match(str(entry.get("version", ""))):
            found[str(name)] = (str(entry["version"]), str(entry.get("over", "")))
    return found


def save_override(path: Path, service: str, version: str, over: str) -> Path | None:
    """Remember in ``path`` that ``service`` runs ``version`` while the profile says ``over``;
    ``version == over`` forgets it (the profile says it again; returns None then)."""
    data = {name: {"version": v, "over": o} for name, (v, o) in read_overrides(path).items()}
    data.pop(service, None)
    if version != over:
        data[service] = {"version": version, "over": over}
    private_dir(path.parent)
    part = path.with_suffix(".part")
    fd = open_private(part, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(part, path)
    return path if version != over else None


def resolved(service: Service, profile_version: str | None, override: tuple[str, str] | None) -> Service:
    """The service with its version: the profile's (or default), unless ``ops upgrade`` chose another
    over exactly that one (``override``: (version, the profile's version it was set over))."""
    base = apply(service, profile_version)
    base = replace(base, profile_version=base.version)
    if override is not None and base.version and override[1] == base.version:
        return apply(base, override[0])
    return base
