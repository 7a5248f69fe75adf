"""The ``services`` group: each container runs, is healthy, answers its probe; the volumes are there."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from ops.doctor import BaseCheck, Outcome, Repair, fail, ok, register, warn
from ops.doctor.context import DoctorContext

#: Lines that look like errors in a container's log.
# A traceback counts once, by the exception line that ends it (which says what it was about).
ERROR_LINE = re.compile(r"\b(ERROR|CRITICAL|FATAL|panic:)|\w+Error:|^error:")
LOG_TAIL = 200


def error_lines(container, kind: str, since_start: bool = True) -> list[str]:
    """Error-looking lines of the container's log (since it last started), minus the kind's benign ones
    (its ``benign_log``: errors it logs in normal operation would make a healthy stack look ill)."""
    import docker.errors

    from ops import services

    options: dict = {"tail": LOG_TAIL}
    started = (container.attrs.get("State") or {}).get("StartedAt", "")
    if since_start and started and not started.startswith("0001"):
        # Docker gives nanoseconds; fromisoformat takes at most microseconds.
        options["since"] = int(datetime.fromisoformat(started[:19] + "+00:00").timestamp())
    try:
        text = container.logs(stdout=True, stderr=True, **options).decode("utf-8", "replace")
    except docker.errors.APIError:
        return []
    benign = services.get(kind).benign_log if kind in services.names() else None
    return [
        line.strip()
        for line in text.splitlines()
        if ERROR_LINE.search(line) and not (benign and benign.search(line))
    ]


def start_container(ctx: DoctorContext, service: str, container) -> str:
    """Start a stopped container again and wait for its probe."""
    from ops.reconcile import wait_ready

    spec = ctx.specs()[service]
    container.start()
    wait_ready(spec, container, lambda _: None)
    return f"{service} started again and answers ({spec.probe(container).target})"


@register
class ContainerCheck(BaseCheck):
    """The service's container exists, runs, is healthy, answers its probe, has not been restarting."""

    name = "services.container"
    group = "services"
    depends_on = ("docker.daemon", "host.profile")
    features = ()
    timeout = 20.0

    def run(self, ctx: DoctorContext) -> Outcome:
        service, profile = self.for_service, ctx.profile_arg
        spec = ctx.specs()[service]
        container = ctx.containers().get(service)
        logs = f"`ops logs {profile} {service}`"
        if container is None:
            return fail(f"no container {spec.name}", f"`ops up {profile}` creates it")
        state = container.attrs.get("State") or {}
        restarts = container.attrs.get("RestartCount", 0)
        if state.get("Status") != "running":
            last = (error_lines(container, spec.kind, since_start=False) or [""])[-1]
            oom = ", out of memory" if state.get("OOMKilled") else ""
            return fail(
                f"{spec.name} is {state.get('Status')} (exit code {state.get('ExitCode')}{oom})"
                + (f"; its log ends: {last[:160]}" if last else ""),
                f"`ops doctor {profile} --fix` starts it again (or `ops up {profile}`); {logs} shows why it stopped",
                Repair(
                    f"start {service} again",
                    lambda: start_container(ctx, service, container),
                    spec.timeout + 30,
                ),
            )
        health = (state.get("Health") or {}).get("Status")
        if health == "unhealthy":
            probes = (state.get("Health") or {}).get("Log") or [{}]
            said = (probes[-1].get("Output") or "").strip().splitlines()
            return fail(
                f"{spec.name} is unhealthy" + (f": {said[-1][:160]}" if said else ""),
                f"{logs}; `ops restart {profile} {service}`",
            )
        probe = spec.probe(container)
        answer = probe.check()
        if not answer.ok:
            return fail(
                f"{spec.name} runs, but {probe.target}: {answer.detail}",
                f"{logs}; `ops restart {profile} {service}`",
            )
        problems = self._wiring(ctx, container, spec)
        if problems:
            return fail("; ".join(problems), f"`ops up {profile}` recreates {spec.name} as the profile says")
        errors = error_lines(container, spec.kind)
        detail = f"{spec.name} running{', ' + health if health else ''}, {probe.target}: {answer.detail}"
        if restarts:
            return warn(f"{detail}; restarted {restarts} time(s)", f"{logs} shows why it keeps stopping")
        if errors:
            return warn(
                f"{detail}; {len(errors)} error line(s) in its log since it started, the last: {errors[-1][:160]}",
                f"{logs} shows them in context",
            )
        return ok(detail)

    @staticmethod
    def _wiring(ctx: DoctorContext, container, spec) -> list[str]:
        """Where the running container differs from the profile: published ports, host.docker.internal."""
        problems = []
        from ops.reconcile import published_ports

        published = {(p.host_ip, p.host_port, p.container_port) for p in published_ports(container)}
        wanted = {(p.host_ip, p.host_port, p.container_port) for p in spec.ports}
        if published != wanted:
            show = ", ".join(f"{ip}:{h}->{c}" for ip, h, c in sorted(published)) or "nothing"
            want = ", ".join(f"{ip}:{h}->{c}" for ip, h, c in sorted(wanted)) or "nothing"
            problems.append(f"{spec.name} publishes {show}; the profile says {want}")
        from ops.profiles.schema import STACK_GATEWAY

        hosts = container.attrs.get("HostConfig", {}).get("ExtraHosts") or []
        mapped = next((h.split(":", 1)[1] for h in hosts if h.startswith("host.docker.internal:")), None)
        if STACK_GATEWAY not in ctx.plan.gateway.bind:
            return problems  # containers are not meant to reach the gateway
        engine = ctx.engine()
        gateway = ctx.network_gateway() if engine.bridge_on_host else None
        if engine.bridge_on_host and gateway and mapped != gateway:
            problems.append(
                f"{spec.name} maps host.docker.internal to {mapped or 'nothing'}, not to the stack network's "
                f"gateway {gateway} where the gateway listens"
            )
        elif not engine.bridge_on_host and mapped:
            problems.append(
                f"{spec.name} maps host.docker.internal to {mapped}; on {engine.name} it must keep the "
                "engine's own, which reaches the host's loopback"
            )
        return problems


@register
class VolumesCheck(BaseCheck):
    """Every volume the services mount exists and is attached where the profile says."""

    name = "services.volumes"
    group = "services"
    depends_on = ("docker.daemon", "host.profile")

    def run(self, ctx: DoctorContext) -> Outcome:
        import docker.errors

        client = ctx.docker()
        containers = ctx.containers()
        profile = ctx.profile_arg
        seen, problems, fixes = [], [], []
        # A stack that was up before (it has state) had data in a volume that is gone now.
        lost = ", empty: the data it held is gone" if ctx.state().secrets.path.exists() else ""
        for service, spec in ctx.specs().items():
            container = containers.get(service)
            attached = {
                (m.get("Name") or m.get("Source"), m.get("Destination"))
                for m in (container.attrs.get("Mounts") or [] if container else [])
            }
            for mount in spec.mounts:
                where = f"{service}:{mount.target}"
                if mount.kind == "bind":
                    if not Path(mount.source).exists():
                        problems.append(f"host folder {mount.source} ({where}) does not exist")
                        fixes.append(f"create it, or fix `services.{service}.volumes`")
                    continue
                try:
                    client.volumes.get(mount.source)
                except docker.errors.NotFound:
                    problems.append(f"volume {mount.source} ({where}) does not exist")
                    fixes.append(f"`ops up {profile}` creates it" + (lost if lost else ""))
                    continue
                if container is not None and (mount.source, mount.target) not in attached:
                    problems.append(f"volume {mount.source} is not attached to {spec.name} at {mount.target}")
                    fixes.append(f"`ops up {profile}` recreates the container with it")
                    continue
                seen.append(f"{mount.source} at {where}")
        if problems:
            return fail("; ".join(problems), "; ".join(dict.fromkeys(fixes)))
        return ok(", ".join(seen) if seen else "the services mount no volumes")
