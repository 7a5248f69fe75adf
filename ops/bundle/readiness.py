"""Could this machine bring a profile up with no network? (``ops doctor``'s ``offline.ready``)

Ready means ``ops up`` would neither build nor download anything: every enabled service's image
is here and current (its recipe hash matches, it was loaded from a bundle for the recipe as it
is now, or it is a named image that was pulled), every recipe model is built in the model cache,
every local model folder exists; catalog models need the catalog online, so an optional one is
skipped offline and a required one makes the profile not ready. Each gap says the command that
closes it.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from ops.bundle import registry
from ops.errors import OpsError
from ops.plan import StackPlan
from ops.settings import Settings


@dataclass(frozen=True)
class Gap:
    """Something ``ops up`` would have to build or download, and the command that makes it here now."""

    what: str
    reason: str
    fix: str


@dataclass(frozen=True)
class Readiness:
    """What is ready for an offline ``ops up`` and what is not."""

    ready: list[str] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No gap."""
        return not self.gaps


def readiness(
    plan: StackPlan, client, settings: Settings | None = None, profile_arg: str | None = None
) -> Readiness:
    """Check ``plan`` against this machine; ``client`` may be None when the plan has no services."""
    settings = settings or Settings.from_env()
    ref = profile_arg or plan.name
    result = Readiness()
    for name, service in plan.enabled.items():
        state = _image_state(client, service, settings)
        if state is None:
            result.ready.append(f"{name}: image {service.declared_image}")
        else:
            result.gaps.append(
                Gap(
                    f"{name}: image {service.build_tag or service.image}",
                    state,
                    f"`ops bundle load FILE` (a bundle of {ref}), or `ops images build {ref} {name}` while online",
                )
            )
    for model in plan.models:
        spec = model.spec
        if model.source == "recipe":
            from ops.models.recipes import is_built

            if model.folder is not None and is_built(model.folder):
                result.ready.append(f"model {model.alias}: built")
            else:
                result.gaps.append(
                    Gap(
                        f"model {model.alias}",
                        f"recipe {spec.recipe if spec else '?'} not built in {settings.cache / 'models'}",
                        f"`ops bundle load FILE`, or `ops model build --profile {ref}` while online",
                    )
                )
        elif model.source == "local":
            if model.folder is not None and (model.folder / "genai_config.json").is_file():
                result.ready.append(f"model {model.alias}: local folder")
            else:
                result.gaps.append(
                    Gap(f"model {model.alias}", f"no model folder at {model.where}", "copy the folder there")
                )
        elif model.source == "catalog":
            if spec is not None and spec.optional:
                result.notes.append(f"model {model.alias}: from the catalog, skipped offline (optional)")
            else:
                result.gaps.append(
                    Gap(
                        f"model {model.alias}",
                        "comes from the Foundry catalog, which needs the network",
                        f"set `optional: true` on it in {ref}, or use a recipe model",
                    )
                )
        else:
            result.notes.append(f"model {model.alias}: served by {model.where} (must be reachable)")
    return result


def _image_state(client, service, settings: Settings) -> str | None:
    """None when ``ops up`` would use an image that is here; else why it would build or pull."""
    import docker.errors

    def present(tag: str) -> bool:
        try:
            client.images.get(tag)
            return True
        except docker.errors.ImageNotFound:
            return False

    recipe = service.recipe_dir if service.recipe_dir and service.recipe_dir.is_dir() else None
    if service.image and service.image_policy != "build" and present(service.image):
        return None
    if service.image_policy == "pull" or recipe is None:
        return f"{service.image or service.build_tag} is not on this machine (it would be pulled)"
    if registry.trusted(client, service.build_tag, recipe, settings):
        return None
    if not present(service.build_tag):
        return f"{service.build_tag} is not on this machine (it would be built)"
    try:
        current = _current(client, service, recipe)
    except OpsError as exc:
        return (
            f"{service.build_tag} cannot be checked against its recipe ({exc.message}): it would be rebuilt"
        )
    return None if current else f"{service.build_tag} is older than its recipe (it would be rebuilt)"


def _current(client, service, recipe: Path) -> bool:
    """The recipe hash ``ops up`` computes (as :mod:`ops.images.policy` does) matches the image's label."""
    from ops.images.build import default_ca_bundle, image_up_to_date, recipe_hash
    from ops.images.policy import assembled_files, recipe_extra_files

    files = recipe_extra_files(recipe.name) | assembled_files(recipe)
    digest = recipe_hash(
        client,
        recipe,
        ca_bundle=service.ca_bundle or default_ca_bundle(),
        build_args=dict(service.build_args) or None,
        extra_files=files,
        dockerfile=service.dockerfile,
    )
    return image_up_to_date(client, service.build_tag, digest)


def network_there(timeout: float = 2.0) -> bool:
    """Whether the package index answers a TCP connection (``PIP_INDEX_URL``'s host, else pypi.org)."""
    url = os.environ.get("PIP_INDEX_URL", "")
    host, port = "pypi.org", 443
    if url.startswith(("http://", "https://")):
        parsed = urlparse(url)
        host = parsed.hostname or host
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False
