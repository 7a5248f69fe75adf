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

        client_or_skip(ctx)
        image = ctx.probe_image()
        if image is None:
            return skipped(
                "no local image to start a container from (ops-base:bookworm is made by the first `ops up`)"
            )
        started = time.monotonic()
        try:
            code, _ = throwaway(ctx, image, ["true"], "run")
        except docker.errors.APIError as exc:
            return fail(
                f"Docker could not start a container from {image}: {exc.explanation or exc}",
                "read the daemon's log (`journalctl -u docker`, or dockerd's output); a full disk "
                "or a broken storage driver are the usual causes",
            )
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

        client_or_skip(ctx)
        engine = ctx.engine()
        root = engine.root_dir
        try:
            if engine.in_vm or engine.kind == "remote":
                raise OSError("not this machine's folder")
            free = shutil.disk_usage(root).free
            where = root
        except OSError:
            # Docker Desktop's disk is its VM's: a container's root file system lives on it.
            measured = _free_inside(ctx)
            if measured is None:
                return ok(
                    f"Docker keeps its data in {root} on {engine.name}, and no local image could measure it"
                )
            free, where = measured, f"{engine.name}'s disk"
        detail = f"{free / GiB:.1f} GiB free in {where} (images, containers, volumes)"
        fix = (
            "free some space: `ops images prune` removes what ops builds left behind; "
            "`docker system prune` removes stopped containers and every unused image"
        )
        if engine.kind == "desktop":
            fix += (
                "; or give Docker Desktop a larger disk (Settings > Resources > Advanced > Disk image size)"
            )
        if free < MIN_FREE_BYTES:
            return fail(detail + "; `ops up` refuses to start below 2 GiB", fix)
        if free < 4 * MIN_FREE_BYTES:
            return warn(detail + "; building Open WebUI needs about 6 GiB", fix)
        return ok(detail)


def throwaway(ctx: DoctorContext, image: str, entrypoint: list[str], purpose: str) -> tuple[int | None, str]:
    """Run ``entrypoint`` in a labelled container from ``image`` (no network), removed after; (exit code, stdout).

    Raises docker's ``APIError`` when the container cannot be made or run.
    """
    import docker.errors

    container = None
    try:
        container = ctx.docker().containers.run(
            image,
            entrypoint=entrypoint,
            command=[],
            detach=True,
            network_mode="none",
            labels={LABEL_DOCTOR: ctx.stack or "none"},
            name=f"ops-doctor-{purpose}-{uuid.uuid4().hex[:8]}",
        )
        code = container.wait(timeout=30).get("StatusCode")
        return code, container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
    finally:
        if container is not None:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)


def _free_inside(ctx: DoctorContext) -> int | None:
    """Free bytes of the engine's disk, read by ``df`` in a throwaway container, or ``None``."""
    import docker.errors

    image = ctx.probe_image()
    if image is None:
        return None
    try:
        _, out = throwaway(ctx, image, ["df", "-Pk", "/"], "df")
        return int(out.split("\n")[1].split()[3]) * 1024
    except (docker.errors.APIError, IndexError, ValueError):
        return None


@register
class EngineCheck(BaseCheck):
    """Which engine runs the containers: Docker Desktop (its backend, its VM's memory), a Linux engine, or one that cannot reach the host."""

    name = "docker.engine"
    group = "docker"
    depends_on = ("docker.daemon",)

    def run(self, ctx: DoctorContext) -> Outcome:
        client_or_skip(ctx)
        engine = ctx.engine()
        memory = engine.memory_bytes / GiB
        detail = f"{engine.name}, {engine.arch}; {'its VM has' if engine.in_vm else 'it has'} {memory:.1f} GiB and {engine.cpus} CPUs"
        if engine.kind == "rootless":
            return warn(
                detail + "; its bridge is in its own network namespace, so containers reach the gateway only "
                "where the engine forwards the host's loopback",
                "use a rootful engine (`just docker` as root), or start rootlesskit with "
                "--disable-host-loopback=false and bind the gateway where its containers see the host",
            )
        if engine.kind == "remote":
            return warn(
                detail + "; containers on another machine cannot reach this machine's gateway",
                "use the engine on this machine (unset DOCKER_HOST, or `docker context use default`)",
            )
        if engine.kind == "vm":
            return warn(
                detail + "; ops treats it like Docker Desktop (host.docker.internal reaches the host's "
                "loopback), which was not verified on this engine",
                "if containers cannot reach the gateway, network.host-gateway says so; Docker Desktop is "
                "the engine ops supports on macOS and Windows",
            )
        largest = max((s.memory_bytes for s in ctx.specs().values()), default=0) if ctx.plan else 0
        want = max(MIN_VM_MEMORY, largest)
        if engine.in_vm and engine.memory_bytes and engine.memory_bytes < want:
            where = (
                "`memory=` under [wsl2] in %UserProfile%\\.wslconfig, then `wsl --shutdown`"
                if engine.backend == "WSL 2"
                else "Docker Desktop's Settings > Resources > Memory"
            )
            return warn(
                f"{detail}; the workshop wants at least {MIN_VM_MEMORY / GiB:.0f} GiB, and one container here may "
                f"use up to {largest / GiB:.1f} GiB",
                f"give the VM more memory: {where}",
            )
        return ok(detail)


#: Memory below which a VM engine is too small for the workshop (Open WebUI with its embedding model).
MIN_VM_MEMORY = 4 * GiB
