"""The ``network`` group, seen from inside: ``host.docker.internal`` reaches the gateway from a container.

This is the classic ECONNREFUSED: the gateway listens on 127.0.0.1 only, the container maps
``host.docker.internal`` somewhere else, or a firewall drops the bridge's traffic. A labelled
throwaway container on the stack network asks the gateway's ``/health`` the way a service would.
"""

from __future__ import annotations

import contextlib
import uuid

from ops.doctor import BaseCheck, Outcome, Repair, fail, ok, profile_of, register, skipped
from ops.doctor.context import LABEL_DOCTOR, DoctorContext
from ops.doctor.gateway import restart_host
from ops.profiles.schema import STACK_GATEWAY


@register
class HostGatewayCheck(BaseCheck):
    """From a container on the stack network, ``host.docker.internal`` reaches the gateway."""

    name = "network.host-gateway"
    group = "network"
    depends_on = ("docker.run", "gateway.health")
    timeout = 45.0

    def run(self, ctx: DoctorContext) -> Outcome:
        from ops.network import network_name

        if not ctx.service_kinds():
            return skipped("the profile runs no containers")
        loaded = profile_of(ctx)
        net = network_name(loaded.name)
        address = ctx.network_gateway()
        down_up = f"`ops down {ctx.profile_arg}` then `ops up {ctx.profile_arg}`"
        if address is None:
            return fail(
                f"the stack network {net} does not exist", f"{down_up} creates it and binds the gateway to it"
            )
        info = ctx.host().info
        engine = ctx.engine()
        if not engine.bridge_on_host:
            return _through_the_engine(ctx, engine, net, info, down_up)
        answer = _probe_from_container(ctx, net, address, info.port)
        seen = f"from a container on {net}, host.docker.internal ({address}):{info.port}"
        if answer.startswith("HTTP/"):  # any answer: the path works (gateway.health judges the rest)
            return ok(f"{seen} answers {answer}")
        if address not in info.addresses:
            why = (
                f"{seen}: {answer}; the gateway listens on {', '.join(info.addresses)} only, not on {address}"
            )
            if STACK_GATEWAY not in loaded.profile.gateway.bind:
                return fail(why, f"add {STACK_GATEWAY} to `gateway.bind` in the profile, then {down_up}")
            # The profile wants it: the host started while Docker was down, or the network was re-made.
            return fail(
                why,
                f"`ops doctor {ctx.profile_arg} --fix` restarts the host on {address} too "
                f"(or `ops restart {ctx.profile_arg} host`)",
                Repair("restart the model host on the stack network too", lambda: restart_host(ctx)),
            )
        return fail(
            f"{seen}: {answer}",
            "a firewall on the host may drop traffic from the Docker bridge: allow "
            f"{address}:{info.port} (e.g. `iptables -I INPUT -i br-+ -p tcp --dport {info.port} -j ACCEPT`)",
        )


def _through_the_engine(ctx: DoctorContext, engine, net: str, info, down_up: str) -> Outcome:
    """Docker Desktop and other VM engines: their own ``host.docker.internal`` reaches the host's loopback."""
    answer = _probe_from_container(ctx, net, None, info.port)
    seen = f"from a container on {net}, host.docker.internal:{info.port} (the name {engine.name} provides)"
    if answer.startswith("HTTP/"):
        return ok(f"{seen} answers {answer}")
    if "127.0.0.1" not in info.addresses:
        return fail(
            f"{seen}: {answer}; the gateway listens on {', '.join(info.addresses)}, not on 127.0.0.1 where "
            "the engine forwards host.docker.internal",
            f"add 127.0.0.1 to `gateway.bind` in the profile, then {down_up}",
        )
    if not engine.forwards_host_loopback:
        return fail(f"{seen}: {answer}", "see docker.engine: this engine's containers cannot reach the host")
    return fail(
        f"{seen}: {answer}",
        "a firewall or VPN on this machine may block Docker Desktop's forwarding to 127.0.0.1: allow it, "
        "or restart Docker Desktop",
    )


_SCRIPT = (
    "exec 3<>/dev/tcp/host.docker.internal/{port} || exit 3; "
    "printf 'GET /health HTTP/1.0\\r\\nHost: host.docker.internal\\r\\n\\r\\n' >&3; head -n 1 <&3"
)


def _probe_from_container(ctx: DoctorContext, network: str, address: str | None, port: int) -> str:
    """Run a labelled throwaway container on ``network``; return the gateway's status line or the error.

    ``address`` is what the container maps ``host.docker.internal`` to (``None``: the engine's own).
    """
    import docker.errors

    client = ctx.docker()
    image = ctx.probe_image()
    if image is None:
        return "no local image to start a probe container from"
    container = None
    try:
        container = client.containers.run(
            image,
            entrypoint=["timeout", "10", "bash", "-c"],
            command=[_SCRIPT.format(port=port)],
            detach=True,
            network=network,
            extra_hosts={"host.docker.internal": address} if address else {},
            labels={LABEL_DOCTOR: ctx.stack},
            name=f"ops-doctor-reach-{uuid.uuid4().hex[:8]}",
        )
        code = container.wait(timeout=30).get("StatusCode")
        out = container.logs(stdout=True, stderr=True).decode("utf-8", "replace").strip()
    except docker.errors.APIError as exc:
        return f"the probe container could not run: {exc.explanation or exc}"
    finally:
        if container is not None:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
    if code == 124:
        return "no answer within 10 s (packets dropped?)"
    if "refused" in out.lower():
        return "connection refused (ECONNREFUSED)"
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {code}, no output"
