"""The Debian base image every ``ops`` image builds on, made without a registry if need be.

:func:`ensure_base_image` reuses a local ``ops-base:bookworm``; else pulls
``debian:bookworm-slim``; else (no registry reachable, the usual case on workshop and CI
machines) bootstraps a Debian root filesystem with debootstrap and imports it.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import docker
import requests
from docker.errors import DockerException, ImageNotFound
from docker.utils import parse_repository_tag

from ops import labels
from ops.errors import DockerError
from ops.images.debootstrap import Progress, bootstrap_rootfs, debian_mirror

BASE_IMAGE = "ops-base:bookworm"
UPSTREAM_IMAGE = "debian:bookworm-slim"
MANAGED_LABEL = labels.MANAGED

# A pull that gets no progress for this long is treated as "no registry": on an offline
# machine the daemon may keep retrying DNS or TCP long after the answer is obvious.
PULL_TIMEOUT_S = 20
# The import answers only after the daemon has unpacked ~200 MB; that can exceed the
# client's default per-request timeout (5 s from ops.docker_engine.connect).
IMPORT_TIMEOUT_S = 600

# What `docker import` loses compared with the debian images on Docker Hub.
_IMPORT_CHANGES = [
    f"LABEL {MANAGED_LABEL}=true ops.base.source=debootstrap",
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    'CMD ["bash"]',
]

# Left out of the imported rootfs: the .deb cache and apt lists (~80 MB; images run
# `apt-get update` first anyway), device nodes (Docker mounts /dev), and the host's
# resolver and hostname (Docker bind-mounts its own).
_TAR_EXCLUDES = [
    "./dev/*",
    "./proc/*",
    "./sys/*",
    "./var/cache/apt/archives/*.deb",
    "./var/lib/apt/lists/*",
    "./etc/resolv.conf",
    "./etc/hostname",
]

_CHUNK = 1 << 20


def ensure_base_image(
    client: docker.DockerClient,
    tag: str = BASE_IMAGE,
    progress: Progress | None = None,
    mirror: str | None = None,
) -> str:
    """Make sure image ``tag`` exists locally and return it.

    ``progress`` receives one-line status messages. ``mirror`` overrides the Debian mirror
    chosen by :func:`ops.images.debootstrap.debian_mirror`. Raises :class:`DockerError`
    when the image can be neither pulled nor bootstrapped.
    """
    say = progress or (lambda _line: None)
    try:
        client.images.get(tag)
        return tag
    except ImageNotFound:
        pass
    except (DockerException, requests.exceptions.RequestException) as exc:
        raise DockerError(f"cannot look up image {tag}: {exc}", hint="Is the Docker daemon healthy?") from exc

    reason = _pull_and_tag(client, tag, say)
    if reason is None:
        return tag
    chosen = mirror or debian_mirror()
    say(f"cannot pull {UPSTREAM_IMAGE} ({reason}); bootstrapping {tag} with debootstrap")
    with bootstrap_rootfs(chosen, say) as rootfs:
        say(f"importing the root filesystem as {tag}")
        _import_rootfs(client, rootfs, tag)
    say(f"base image {tag} is ready")
    return tag


def _pull_and_tag(client: docker.DockerClient, tag: str, say: Progress) -> str | None:
    """Pull the upstream image and label it as ``tag``; return why it failed, or None."""
    say(f"pulling {UPSTREAM_IMAGE}")
    repo, upstream_tag = parse_repository_tag(UPSTREAM_IMAGE)
    try:
        with _request_timeout(client, PULL_TIMEOUT_S):
            client.images.pull(repo, tag=upstream_tag)
        # A one-line build adds the label that a plain `docker tag` could not.
        client.images.build(
            fileobj=_dockerfile(f"FROM {UPSTREAM_IMAGE}\n"),
            tag=tag,
            labels={MANAGED_LABEL: "true", "ops.base.source": UPSTREAM_IMAGE},
            rm=True,
            timeout=PULL_TIMEOUT_S,
        )
    except (DockerException, requests.exceptions.RequestException) as exc:
        # APIError.explanation is the daemon's own words, without docker-py's URL preamble.
        text = str(getattr(exc, "explanation", None) or exc).strip()
        return text.splitlines()[0] if text else type(exc).__name__
    return None


def _import_rootfs(client: docker.DockerClient, rootfs: Path, tag: str) -> None:
    """Stream ``tar`` of ``rootfs`` into ``docker import``, without holding it in memory."""
    repo, image_tag = parse_repository_tag(tag)
    cmd = ["tar", "--numeric-owner", "-C", str(rootfs)]
    cmd += [f"--exclude={pattern}" for pattern in _TAR_EXCLUDES]
    cmd += ["-c", "."]
    # stderr goes to a file: a pipe nobody reads until the import ends could fill and stall tar.
    with (
        tempfile.TemporaryFile() as tar_log,
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=tar_log) as tar,
    ):
        stdout = tar.stdout
        assert stdout is not None  # Popen(stdout=PIPE) always opens it
        chunks = iter(lambda: stdout.read(_CHUNK), b"")
        try:
            with _request_timeout(client, IMPORT_TIMEOUT_S):
                answer = client.api.import_image(
                    src=chunks, repository=repo, tag=image_tag, changes=_IMPORT_CHANGES, stream_src=True
                )
        except (DockerException, requests.exceptions.RequestException) as exc:
            tar.kill()
            detail = getattr(exc, "explanation", None) or exc
            raise DockerError(
                f"docker import of {tag} failed: {detail}", hint="See the dockerd log."
            ) from exc
        tar_code = tar.wait()
        tar_log.seek(0)
        tar_err = tar_log.read().decode(errors="replace").strip()
    error = _stream_error(answer)
    if tar_code != 0 or error:
        # The daemon happily imports a truncated or even empty tar stream as an image;
        # never leave such an image behind under the real tag.
        with contextlib.suppress(DockerException):
            client.images.remove(tag, force=True)
        detail = error or f"tar exited {tar_code}: {' | '.join(tar_err.splitlines()[:3])}"
        raise DockerError(f"docker import of {tag} failed: {detail}", hint="See the dockerd log.")


def _stream_error(answer: str) -> str | None:
    """The error in a daemon JSON-lines answer, if any.

    Once the daemon has started streaming its answer (HTTP 200), it can only report a
    failure inside the stream, which docker-py's ``import_image`` returns as text.
    """
    for line in answer.splitlines():
        with contextlib.suppress(ValueError):
            message = json.loads(line)
            if isinstance(message, dict) and message.get("error"):
                return str(message["error"])
    return None


@contextlib.contextmanager
def _request_timeout(client: docker.DockerClient, seconds: float) -> Iterator[None]:
    """Use another per-request timeout on ``client`` for the duration of the block.

    docker-py's ``pull`` and ``import_image`` take no timeout argument; they use the
    client's, which callers set for short calls.
    """
    saved = client.api.timeout
    client.api.timeout = seconds
    try:
        yield
    finally:
        client.api.timeout = saved


def _dockerfile(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode())
