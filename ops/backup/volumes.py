"""Copy a named Docker volume to a tar file, back, or to another volume, without running anything.

Each copy uses a one-shot helper container that is **created and never started**: Docker's archive
API (``docker cp``'s) reads and writes the volume mounted in it. Nothing executes, so nothing needs
a network, a shell in the image or a capability (the container is made with none: no network, every
capability dropped, no new privileges); it is removed as soon as the copy ends, whatever happens.
Files keep their owners, modes and symlinks (the tar carries them; the engine, running as root,
restores them), so a restored volume is the volume that was exported.

The helper image is by default :data:`HELPER_IMAGE`: an empty image (no layers, 0 bytes) that
:func:`helper_image` imports from an empty tar when it is missing, so a copy needs neither a
registry nor the service's image (a restore runs before ``ops up`` has built anything). Any
local image works too: it only has to exist.

A volume's tar has one top folder, ``volume/`` (the volume's root: its owner and mode come back
with it), and is what :func:`export_volume` writes and :func:`import_volume` reads.
"""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO

import docker.errors
import requests
from docker.types import Mount as DockerMount

from ops import labels
from ops.docker_engine import refused
from ops.errors import ConflictError, DockerError
from ops.private import open_private

#: The empty image helper containers are made from (imported by :func:`helper_image`).
HELPER_IMAGE = "ops-volume-helper:1"
#: Where a helper container mounts the volume it copies.
TARGET = "/volume"
#: What a helper container's ``ops.service`` label says (it carries the volume's ``ops.stack`` too).
HELPER_SERVICE = "volume-copy"
_CHUNK = 1 << 20

#: Called with the number of bytes just copied.
Progress = Callable[[int], None]


def helper_image(client) -> str:
    """The empty helper image, imported (from an empty tar, offline) if missing; returns its tag."""
    try:
        client.images.get(HELPER_IMAGE)
        return HELPER_IMAGE
    except docker.errors.ImageNotFound:
        pass
    empty = io.BytesIO()
    with tarfile.open(fileobj=empty, mode="w"):
        pass
    repository, _, tag = HELPER_IMAGE.partition(":")
    with refused("import the empty volume-copy helper image"):
        client.api.import_image_from_data(
            empty.getvalue(),
            repository=repository,
            tag=tag,
            changes=[f"LABEL {labels.MANAGED}=true", 'CMD ["none"]'],
        )
    return HELPER_IMAGE


def export_volume(
    client, volume: str, dest: Path, image: str | None = None, progress: Progress | None = None
) -> int:
    """Write volume ``volume`` as a tar (top folder ``volume/``) to ``dest`` (0600); returns its size.

    ``dest`` is written whole or not at all (``dest.part`` renamed at the end).
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    written = 0
    with _helper(client, volume, image, read_only=True) as helper, _archive(client, helper, volume) as raw:
        try:
            with os.fdopen(open_private(part, os.O_WRONLY | os.O_TRUNC), "wb") as out:
                while chunk := raw.read(_CHUNK):
                    out.write(chunk)
                    written += len(chunk)
                    if progress:
                        progress(len(chunk))
        except BaseException:
            part.unlink(missing_ok=True)
            raise
    part.replace(dest)
    return written


def import_volume(
    client,
    volume: str,
    source: Path,
    image: str | None = None,
    *,
    volume_labels: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> None:
    """Fill volume ``volume`` from a tar :func:`export_volume` wrote (the volume is created if missing).

    A new volume gets ``volume_labels`` (give ``{ops.stack: <stack>}`` for a stack's volume; its
    ``ops.volume`` label is added). An existing volume must be empty: else :class:`ConflictError`,
    and nothing is written.
    """
    with open(source, "rb") as stream:
        import_stream(client, volume, stream, image, volume_labels=volume_labels, progress=progress)


def import_stream(
    client,
    volume: str,
    stream: IO[bytes] | io.RawIOBase,
    image: str | None = None,
    *,
    volume_labels: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> None:
    """:func:`import_volume` from an open stream (a member of an archive) instead of a file."""
    _fill(client, volume, _Counting(stream, progress), image, volume_labels)


def copy_volume(
    client,
    source: str,
    target: str,
    image: str | None = None,
    *,
    volume_labels: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> None:
    """Copy volume ``source`` into volume ``target`` (new, made with ``volume_labels``, or empty).

    The tar streams from one helper container to the other: nothing is written on the host.
    """
    with _helper(client, source, image, read_only=True) as reader, _archive(client, reader, source) as raw:
        _fill(client, target, _Counting(raw, progress), image, volume_labels)


def is_empty(client, volume: str, image: str | None = None) -> bool:
    """True when volume ``volume`` holds no file (a missing volume counts as empty)."""
    try:
        client.volumes.get(volume)
    except docker.errors.NotFound:
        return True
    with (
        _helper(client, volume, image, read_only=True) as helper,
        _archive(client, helper, volume) as raw,
        tarfile.open(fileobj=raw, mode="r|") as tar,
    ):
        for member in tar:
            if member.name.strip("/") != TARGET.strip("/"):
                return False
    return True


def _fill(client, volume: str, stream, image: str | None, volume_labels: Mapping[str, str] | None) -> None:
    try:
        client.volumes.get(volume)
        if not is_empty(client, volume, image):
            raise ConflictError(
                f"volume {volume} is not empty: nothing was written to it",
                hint=f"`docker volume rm {volume}` if its data is not needed (after a backup)",
            )
    except docker.errors.NotFound:
        all_labels = {**(volume_labels or {}), labels.VOLUME: volume}
        with refused(f"create volume {volume}"):
            client.volumes.create(volume, labels=all_labels)
    with _helper(client, volume, image, read_only=False) as helper, refused(f"write volume {volume}"):
        if not helper.put_archive("/", stream):
            raise DockerError(f"Docker did not write volume {volume}", hint="see `docker info`")


@contextlib.contextmanager
def _archive(client, helper, volume: str) -> Iterator:
    """The tar of :data:`TARGET` in ``helper``, as a raw stream; the response is closed at the end.

    (The low-level call: docker-py's ``get_archive`` generator cannot be closed half-read, and a
    half-read response left open blocks the next request on the connection.)
    """
    api = client.api
    with refused(f"read volume {volume}"):
        response = api._get(
            api._url("/containers/{0}/archive", helper.id), params={"path": TARGET}, stream=True
        )
        try:
            api._raise_for_status(response)
            response.raw.decode_content = True
            yield response.raw
        finally:
            response.close()


@contextlib.contextmanager
def _helper(client, volume: str, image: str | None, read_only: bool) -> Iterator:
    """A created (never started) container with ``volume`` at :data:`TARGET`; removed at the end."""
    stack = ""
    with contextlib.suppress(docker.errors.NotFound):
        stack = (client.volumes.get(volume).attrs.get("Labels") or {}).get(labels.STACK, "")
    own = {labels.SERVICE: HELPER_SERVICE, labels.VOLUME: volume}
    if stack:
        own[labels.STACK] = stack
    with refused(f"create a helper container for volume {volume}"):
        container = client.containers.create(
            image or helper_image(client),
            ["none"],
            entrypoint=[],
            network_mode="none",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            mounts=[DockerMount(target=TARGET, source=volume, type="volume", read_only=read_only)],
            labels=own,
        )
    try:
        yield container
    finally:
        with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
            container.remove(v=True, force=True)


class _Counting(io.RawIOBase):
    """Pass reads through, telling ``progress`` how much passed; iterable in chunks (a streamed upload)."""

    def __init__(self, stream, progress: Progress | None) -> None:
        self._stream, self._progress = stream, progress

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size if size and size > 0 else _CHUNK)
        if data and self._progress:
            self._progress(len(data))
        return data or b""

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def __iter__(self):
        while True:
            data = self.read(_CHUNK)
            if not data:
                return
            yield data
