"""What an upgrade makes and removes again: copies of volumes, and the trial container on a copy.

Everything here carries the label ``ops.upgrade=<run id>`` and never ``ops.stack`` (which would make
``ops up``, ``ops down`` and backups count it as the stack's own); :func:`remove` takes away exactly
what one run made.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import docker.errors
import requests
from docker.types import Mount as DockerMount

from ops import labels
from ops.backup.volumes import copy_volume as stream_copy
from ops.docker_engine import refused
from ops.errors import DockerError
from ops.images.base import BASE_IMAGE
from ops.profiles.mappings import PortMapping
from ops.services.spec import ContainerSpec

Say = Callable[[str], None]
#: What a copy container may do as root: read and write every file and keep its owner and mode.
_COPY_CAPS = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID"]


def run_id() -> str:
    """A short id that names one upgrade run's volumes and containers."""
    return secrets.token_hex(4)


def scratch_name(stack: str, service: str, run: str, role: str, index: int) -> str:
    """``ops-upgrade-<stack>-<service>-<run>-<role><n>``: role ``trial`` (the copy the new version
    tries) or ``keep`` (the data as it was before the switch)."""
    return f"ops-upgrade-{stack}-{service}-{run}-{role}{index}"


def copy_image(client, fallback: str) -> str:
    """The image a put-back runs ``sh`` in: the ops base image when present, else ``fallback``
    (the old version's image)."""
    try:
        client.images.get(BASE_IMAGE)
        return BASE_IMAGE
    except docker.errors.ImageNotFound:
        return fallback


def copy_volume(client, source: str, target: str, image: str) -> None:
    """Make volume ``target`` an exact copy of volume ``source`` (owners, modes, times); ``target``'s
    own files are deleted first (the put-back after a failed switch: the real volume is not empty)."""
    script = "find /to -mindepth 1 -delete && cp -a /from/. /to/"
    try:
        client.containers.run(
            image,
            ["sh", "-ec", script],
            user="0",
            entrypoint=[],
            cap_drop=["ALL"],
            cap_add=_COPY_CAPS,
            security_opt=["no-new-privileges"],
            network_mode="none",
            mounts=[
                DockerMount(target="/from", source=source, type="volume", read_only=True),
                DockerMount(target="/to", source=target, type="volume"),
            ],
            labels={labels.UPGRADE: "copy"},
            remove=True,
        )
    except docker.errors.ContainerError as exc:
        stderr = exc.stderr.decode("utf-8", "replace") if isinstance(exc.stderr, bytes) else exc.stderr
        raise DockerError(
            f"copying volume {source} to {target} failed: {(stderr or str(exc)).strip().splitlines()[-1:]}",
            hint="see `docker system df -v`: the disk may be full",
        ) from None
    except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
        raise DockerError(
            f"Docker refused to copy volume {source}: {exc}", hint="see `docker info`"
        ) from None


def copy_to_new(client, source: str, target: str, run: str) -> str:
    """Copy volume ``source`` into a new scratch volume ``target`` of run ``run``; returns ``target``.

    ``ops backup``'s volume copy: a tar streamed between two never-started containers of an empty
    image (nothing runs, owners and modes kept).
    """
    stream_copy(client, source, target, volume_labels={labels.UPGRADE: run})
    return target


@contextlib.contextmanager
def paused(container, say: Say) -> Iterator[None]:
    """Pause ``container`` for the block (a copy never sees a half-written database), then resume it."""
    started = time.monotonic()
    with refused(f"pause {container.name}"):
        container.pause()
    try:
        yield
    finally:
        with refused(f"resume {container.name}"):
            container.unpause()
        say(f"{container.name} was paused for {time.monotonic() - started:.1f} s while its data was copied")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at ``host`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def trial_spec(spec: ContainerSpec, volumes: dict[str, str], port: int) -> ContainerSpec:
    """``spec`` on the scratch copies (``volumes``: real volume -> copy) and one loopback port."""
    mounts = tuple(
        replace(m, source=volumes[m.source]) if m.kind == "volume" and m.source in volumes else m
        for m in spec.mounts
    )
    first = spec.ports[0] if spec.ports else None
    ports = (PortMapping("127.0.0.1", port, first.container_port, first.protocol),) if first else ()
    return replace(spec, mounts=mounts, ports=ports)


def start_trial(client, spec: ContainerSpec, run: str):
    """Create and start the trial container of ``spec``: its own name, the run's label, no restart."""
    kwargs = spec.create_kwargs()
    kwargs.update(
        name=f"{spec.name}-upgrade-{run}",
        labels={labels.UPGRADE: run, labels.VERSION: spec.version},
        hostname=f"{spec.service}-upgrade",
        restart_policy={"Name": "no"},
    )
    with refused(f"start the trial container of {spec.service}"):
        container = client.containers.create(**kwargs)
        container.start()
    return container


def remove(client, run: str, spare: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Remove every container and volume of run ``run`` but those in ``spare``; returns their names."""
    removed = []
    with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
        for container in client.containers.list(all=True, filters={"label": f"{labels.UPGRADE}={run}"}):
            container.remove(force=True)
            removed.append(container.name)
    with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
        for volume in client.volumes.list(filters={"label": f"{labels.UPGRADE}={run}"}):
            if volume.name in spare:
                continue
            volume.remove(force=True)
            removed.append(volume.name)
    return removed


def interrupted(client, stack: str) -> list[str]:
    """What an upgrade of ``stack`` that was killed mid-way left: the old version's renamed container
    (``-before-upgrade-``) and scratch volumes (a ``keep`` copy is the data as it was at the switch)."""
    with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
        found = [
            c.name
            for c in client.containers.list(all=True, filters={"label": f"{labels.STACK}={stack}"})
            if "-before-upgrade-" in c.name
        ]
        found += [
            v.name
            for v in client.volumes.list(filters={"label": labels.UPGRADE})
            if v.name.startswith(f"ops-upgrade-{stack}-")
        ]
        return sorted(found)
    return []
