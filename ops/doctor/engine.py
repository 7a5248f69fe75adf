"""The ``docker`` group: the daemon answers, can start a container, and has disk space."""

from __future__ import annotations

import contextlib
import shutil
import time
import uuid

from ops.doctor import BaseCheck, Outcome, Skip, fail, ok, register, skipped, warn
from ops.doctor.context import LABEL_DOCTOR, DoctorContext
from ops.errors import DockerError

GiB = 1024**3


def needs_docker(ctx: DoctorContext) -> bool:
    """Whether the stack runs containers at all (without a profile: assume it does)."""
    return ctx.loaded is None or bool(ctx.service_kinds())


def client_or_skip(ctx: DoctorContext):
    """The Docker client; skips the calling check when Docker is unreachable but not needed."""
    try:
        return ctx.docker()
    except DockerError:
        if not needs_docker(ctx):
            raise Skip("Docker is not reachable, and this profile runs no containers") from None
        raise


@register
class DaemonCheck(BaseCheck):
    """The Docker daemon answers: where, its version and API."""

    name = "docker.daemon"
    group = "docker"
    timeout = 10.0

    def run(self, ctx: DoctorContext) -> Outcome:
        from ops.docker_engine import endpoint, engine_info

        try:
            client = ctx.docker()
        except DockerError as exc:
            if not needs_docker(ctx):
                return warn(f"{exc.message} (this profile runs no containers)", exc.hint or "")
            return fail(exc.message, exc.hint or "start the Docker daemon")
        info = engine_info(client)
        return ok(
            f"Docker {info.server_version}, API {info.api_version}, {info.os}, {info.storage_driver}, at {endpoint()}"
        )


@register
class RunCheck(BaseCheck):
    """The daemon can start a container (from a local image: no registry is asked)."""

    name = "docker.run"
    group = "docker"
    depends_on = ("docker.daemon",)
    timeout = 45.0

    def run(self, ctx: DoctorContext) -> Outcome:
        import docker.errors

        client = client_or_skip(ctx)
        image = ctx.probe_image()
        if image is None:
            return skipped(
                "no local image to start a container from (ops-base:bookworm is made by the first `ops up`)"
            )
        started = time.monotonic()
        container = None
        try:
            container = client.containers.run(
                image,
                entrypoint=["true"],
                command=[],
                detach=True,
                network_mode="none",
                labels={LABEL_DOCTOR: ctx.stack or "none"},
                name=f"ops-doctor-run-{uuid.uuid4().hex[:8]}",
            )
            code = container.wait(timeout=30).get("StatusCode")
        except docker.errors.APIError as exc:
            return fail(
                f"Docker could not start a container from {image}: {exc.explanation or exc}",
                "read the daemon's log (`journalctl -u docker`, or dockerd's output); a full disk "
                "or a broken storage driver are the usual causes",
            )
        finally:
            if container is not None:
                with contextlib.suppress(docker.errors.APIError):
                    container.remove(force=True)
        if code != 0:
            return fail(
                f"a container from {image} exited with code {code} instead of 0",
                "read the daemon's log (`journalctl -u docker`, or dockerd's output)",
            )
        return ok(f"started and removed a container from {image} in {time.monotonic() - started:.1f} s")


@register
class DockerDiskCheck(BaseCheck):
    """Free space where Docker keeps images, containers and volumes."""

    name = "docker.disk"
    group = "docker"
    depends_on = ("docker.daemon",)

    def run(self, ctx: DoctorContext) -> Outcome:
        from ops.lifecycle import MIN_FREE_BYTES

        client = client_or_skip(ctx)
        root = client.info().get("DockerRootDir", "/var/lib/docker")
        try:
            free = shutil.disk_usage(root).free
        except OSError:
            return ok(
                f"Docker keeps its data in {root}, which is not visible from here (a VM or remote daemon)"
            )
        detail = f"{free / GiB:.1f} GiB free in {root} (images, containers, volumes)"
        fix = "free some space: `docker system prune` removes stopped containers and unused images"
        if free < MIN_FREE_BYTES:
            return fail(detail + "; `ops up` refuses to start below 2 GiB", fix)
        if free < 4 * MIN_FREE_BYTES:
            return warn(detail + "; building Open WebUI needs about 6 GiB", fix)
        return ok(detail)
