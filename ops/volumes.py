"""A stack's volumes beyond the profile's: those an image declares, and who owns them.

``declared``: each ``VOLUME`` an image declares that the service does not mount gets a named
volume, so its data survives a replace.

``hand_over``: a stack's existing volumes are handed to the user an image runs as, before its
container starts.

A new named volume takes the owner of the image's folder it is mounted on (Docker copies it up on
first use); a volume made earlier, by an image that ran as root, does not: its files stay root's,
and a service that now runs as its own user could not write them. When a container is about to
be created or replaced, each of its existing named volumes whose files are not all the image
user's is given to that user by a one-shot container (the service's own image, run as root with
only CHOWN, FOWNER and DAC_READ_SEARCH, no network), once. Host folders (bind mounts) are never
touched: they are the user's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import docker.errors
from docker.types import Mount as DockerMount

from ops import labels
from ops.errors import DockerError
from ops.services.spec import ContainerSpec, Mount

if TYPE_CHECKING:
    from ops.plan import ResolvedService

Say = Callable[[str], None]
#: Where the one-shot container mounts the volume it fixes.
TARGET = "/volume"


def declared(client, service: ResolvedService, image_id: str) -> tuple[Mount, ...]:
    """A named volume for each ``VOLUME`` the image declares that the service does not mount.

    Docker would give each an anonymous volume, lost when the container is replaced; a named
    one (``ops-<stack>-<service>-<path>``) keeps the service's data across ``ops up`` runs,
    as compose keeps them across a re-create.
    """
    try:
        wanted = (client.images.get(image_id).attrs.get("Config") or {}).get("Volumes") or {}
    except docker.errors.ImageNotFound:
        return ()
    mounted = {m.target for m in service.mounts}
    extra = []
    for target in sorted(wanted):
        if target not in mounted:
            slug = "-".join(part for part in target.strip("/").replace("_", "-").split("/") if part)
            extra.append(Mount("volume", f"{service.container_name}-{slug or 'root'}", target))
    return tuple(extra)


def image_user(client, image_id: str) -> tuple[int, int] | None:
    """The numeric (uid, gid) an image runs as, or ``None`` for root or a user given by name."""
    try:
        user = (client.images.get(image_id).attrs.get("Config") or {}).get("User") or ""
    except docker.errors.ImageNotFound:
        return None
    uid, _, gid = user.partition(":")
    if not uid.isdigit() or int(uid) == 0:
        return None
    return int(uid), int(gid) if gid.isdigit() else int(uid)


def hand_over(client, spec: ContainerSpec, existing: set[str], say: Say) -> list[str]:
    """Give ``spec``'s existing named volumes to its image's user; returns the volumes changed.

    One one-shot container per service, all its volumes mounted at once: each prints the volumes
    it changed and how many files were another user's.
    """
    owner = image_user(client, spec.image_id or spec.image)
    if owner is None:
        return []
    uid, gid = owner
    sources = [
        m.source for m in spec.mounts if m.kind == "volume" and not m.read_only and m.source in existing
    ]
    if not sources:
        return []
    script = "".join(
        f"n=$(find {TARGET}/{i} ! -user {uid} -print | wc -l); "
        f'[ "$n" = 0 ] || {{ chown -R -h {uid}:{gid} {TARGET}/{i} && echo "{i} $n"; }}; '
        for i in range(len(sources))
    )
    try:
        output = client.containers.run(
            spec.image_id or spec.image,
            ["sh", "-ec", script],
            user="0",
            entrypoint=[],
            cap_drop=["ALL"],
            cap_add=["CHOWN", "FOWNER", "DAC_READ_SEARCH"],
            security_opt=["no-new-privileges"],
            network_mode="none",
            mounts=[
                DockerMount(target=f"{TARGET}/{i}", source=v, type="volume") for i, v in enumerate(sources)
            ],
            labels={labels.STACK: spec.stack, labels.SERVICE: f"{spec.service}-ownership"},
            remove=True,
        )
    except docker.errors.ContainerError as exc:
        raise DockerError(
            f"{spec.service}: could not give volumes {', '.join(sources)} to user {uid}: {exc.stderr or exc}",
            hint=f"`docker run --rm -v {sources[0]}:/v {spec.image} ls -ln /v` shows who owns it",
        ) from None
    except docker.errors.APIError as exc:
        raise DockerError(
            f"{spec.service}: Docker refused the one-shot container for volumes {', '.join(sources)}: "
            f"{exc.explanation or exc}",
            hint="see `docker info`",
        ) from None
    changed = []
    text = output.decode() if isinstance(output, bytes) else ""
    for line in text.splitlines():
        index, _, count = line.partition(" ")
        source = sources[int(index)]
        say(f"{spec.service}: volume {source} given to user {uid} ({count} files were another user's)")
        changed.append(source)
    return changed
