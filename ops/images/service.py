"""A service's image, made available by its policy: the step of ``ops up`` and ``ops images build``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import docker.errors

from ops.errors import DockerError

if TYPE_CHECKING:
    from ops.plan import ResolvedService

Say = Callable[[str], None]


def ensure_service_image(
    client, service: ResolvedService, say: Say, policy: str | None = None
) -> tuple[str, str, str]:
    """(tag, image id, where it came from) for ``service``, by its image policy (or ``policy``)."""
    from ops.images.build import default_ca_bundle
    from ops.images.policy import ensure_image

    recipe = service.recipe_dir
    loaded = _loaded_from_bundle(client, service, policy or service.image_policy)
    if loaded is not None:
        say(f"{service.name}: image {service.build_tag} (loaded: {loaded[1]})")
        return service.build_tag, loaded[0], "loaded"
    result = ensure_image(
        client,
        image=service.image or None,
        recipe_dir=recipe if recipe and recipe.is_dir() else None,
        policy=policy or service.image_policy,
        build_tag=service.build_tag,
        ca_bundle=service.ca_bundle or default_ca_bundle(),
        build_args=dict(service.build_args) or None,
        dockerfile=service.dockerfile,
        progress=lambda line: say(f"{service.name}: {line}"),
    )
    say(
        f"{service.name}: image {result.tag} ({result.source}{': ' + result.detail if result.detail else ''})"
    )
    try:
        image_id = client.images.get(result.tag).id
    except docker.errors.ImageNotFound:
        raise DockerError(
            f"{service.name}: image {result.tag} vanished after it was made", hint="retry `ops up`"
        ) from None
    return result.tag, image_id, result.source


def _loaded_from_bundle(client, service: ResolvedService, policy: str) -> tuple[str, str] | None:
    """(image id, why) when the service's build is one ``ops bundle load`` loaded for its recipe as it
    is now: used as it is, though this machine's CA bundle or missing host files (a wheel the
    recipe takes from the host) would give another recipe hash (:mod:`ops.bundle.registry`)."""
    from ops.bundle.registry import trusted

    if policy == "pull" or not service.build_tag:
        return None
    if service.image and policy != "build":
        try:
            client.images.get(service.image)
            return None  # the named image is here: the policy's own choice stands
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.DockerException:
            return None  # the usual path says what is wrong
    reason = trusted(client, service.build_tag, service.recipe_dir)
    if reason is None:
        return None
    return client.images.get(service.build_tag).id, reason
