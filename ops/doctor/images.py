"""The profile's images: which are not on this machine yet, and how much disk ``ops`` can reclaim.

:func:`missing_images` is shared by the registry and CA bundle checks (the network only matters
for images still to be pulled or built); ``docker.reclaimable`` is the check that says how much
``ops images prune`` would free.
"""

from __future__ import annotations

from dataclasses import dataclass

from ops.doctor import BaseCheck, Outcome, ok, register, warn
from ops.doctor.context import DoctorContext

#: Less than this left behind is not worth a warning.
RECLAIM_WARN_BYTES = 100 * 1000**2
_KINDS = {
    "stage": "build stage image(s) left behind",
    "replaced-build": "build(s) replaced by a newer one",
    "unused-build": "build(s) no profile uses",
}
# Listing every image with its shared size reads each layer's size: seconds on a full disk.
_DF_TIMEOUT_S = 60.0

DOCKER_HUB = "registry-1.docker.io"


@dataclass(frozen=True)
class MissingImage:
    """A service whose image is not here: what would be pulled, from where, and the fallback."""

    service: str
    image: str
    registry: str
    policy: str
    has_recipe: bool


def registry_of(image: str) -> str:
    """The registry host of an image reference (Docker Hub when it names none)."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return DOCKER_HUB


def registries(ctx: DoctorContext) -> list[str]:
    """The registries the profile's services would pull from."""
    return list(
        dict.fromkeys(registry_of(i) for _, i, policy, _, _ in _images(ctx) if i and policy != "build")
    )


def missing_images(ctx: DoctorContext) -> list[MissingImage] | None:
    """The services whose image is not on this machine; ``None`` when Docker cannot be asked."""
    if ctx.docker_or_none() is None:
        return None
    return ctx.once("missing-images", lambda: _missing(ctx))


def _images(ctx: DoctorContext) -> list[tuple[str, str | None, str, str | None, bool]]:
    """(service, image to pull, policy, local build tag, has a recipe) per enabled service."""
    if ctx.plan is None:
        return []
    rows: list[tuple[str, str | None, str, str | None, bool]] = []
    for name, service in ctx.plan.enabled.items():
        recipe = service.recipe_dir
        rows.append(
            (
                name,
                service.image or None,
                service.image_policy,
                service.build_tag or None,
                bool(recipe and recipe.is_dir()),
            )
        )
    return rows


def _missing(ctx: DoctorContext) -> list[MissingImage]:
    import docker.errors

    client = ctx.docker()

    def here(tag: str | None) -> bool:
        if not tag:
            return False
        try:
            client.images.get(tag)
        except docker.errors.ImageNotFound:
            return False
        return True

    result = []
    for service, image, policy, build_tag, has_recipe in _images(ctx):
        candidates = {"pull": [image], "build": [build_tag]}.get(policy, [image, build_tag])
        if any(here(tag) for tag in candidates):
            continue
        # A service with no image to pull (recipe only) needs no registry: its registry is "".
        registry = registry_of(image) if image and policy != "build" else ""
        result.append(MissingImage(service, image or build_tag or "", registry, policy, has_recipe))
    return result


@register
class ReclaimableCheck(BaseCheck):
    """Disk held by images ``ops`` made that nothing uses (build stages left behind, unused builds)."""

    name = "docker.reclaimable"
    group = "docker"
    depends_on = ("docker.daemon",)
    timeout = _DF_TIMEOUT_S + 5

    def run(self, ctx: DoctorContext) -> Outcome:
        from ops.docker_engine import connect
        from ops.doctor.engine import client_or_skip
        from ops.images.prune import survey

        client_or_skip(ctx)
        found = survey(connect(timeout=_DF_TIMEOUT_S), ctx.settings)
        if not found.images:
            return ok("no image ops made is left unused")
        counts = {r: sum(1 for item in found.images if item.reason == r) for r in _KINDS}
        detail = f"{found.bytes / 1e9:.2f} GB reclaimable: " + ", ".join(
            f"{n} {what}" for r, what in _KINDS.items() if (n := counts[r])
        )
        if found.bytes < RECLAIM_WARN_BYTES:
            return ok(detail)
        return warn(detail, "`ops images prune` removes them (`--dry-run` lists them first)")
