"""The stack's Docker network, and the host addresses the gateway binds to.

On a Linux engine containers reach the host as ``host.docker.internal`` only when the host
service listens on the network's gateway address, so the gateway binds there and on ``127.0.0.1``;
on Docker Desktop the name is built in and reaches the host's loopback, so 127.0.0.1 is enough
(:mod:`ops.engines`). Never ``0.0.0.0`` unless the profile lists it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ops.engines import Engine, detect
from ops.errors import DockerError
from ops.profiles.schema import STACK_GATEWAY

log = logging.getLogger(__name__)


def network_name(stack: str) -> str:
    """Name of the stack's bridge network."""
    return f"ops-{stack}"


def ensure_network(client, stack: str) -> str:
    """Create the stack's network if missing (labelled); return its gateway address."""
    from ops import labels

    name = network_name(stack)
    found = client.networks.list(names=[name])
    network = next((n for n in found if n.name == name), None)
    if network is None:
        import docker.errors

        try:
            network = client.networks.create(
                name, driver="bridge", labels={labels.STACK: stack}, check_duplicate=True
            )
            network.reload()
        except docker.errors.APIError as exc:
            raise DockerError(
                f"Docker could not create network {name}: {exc.explanation or exc}",
                hint="`docker network ls` shows the networks; Docker may have run out of address pools "
                "(`docker network prune` removes unused ones)",
            ) from None
    configs = network.attrs.get("IPAM", {}).get("Config") or []
    gateway = next((c.get("Gateway") for c in configs if c.get("Gateway")), None)
    if not gateway:
        raise DockerError(
            f"network {name} has no gateway address", hint=f"remove it (`docker network rm {name}`) and retry"
        )
    return gateway


@dataclass(frozen=True)
class HostReach:
    """Where the gateway listens, and what ``host.docker.internal`` means in the stack's containers."""

    #: The IP addresses the gateway binds.
    addresses: tuple[str, ...]
    #: What containers map ``host.docker.internal`` to: the stack network's gateway on a Linux
    #: engine; ``""`` keeps the engine's own name (Docker Desktop's, which reaches the host's loopback).
    alias: str = ""
    #: Said to the user when containers will not reach the gateway, and why.
    notice: str | None = None


def host_reach(binds: tuple[str, ...], stack: str, client=None, engine: Engine | None = None) -> HostReach:
    """Resolve a profile's ``gateway.bind`` for the engine that runs the stack's containers.

    ``stack-gateway`` means "where this engine's containers reach the host": the stack network's
    gateway address on a Linux engine (the network is created if needed), the host's loopback on
    Docker Desktop and other VM engines, which forward ``host.docker.internal`` there (so nothing
    is opened beyond 127.0.0.1). When Docker cannot be asked, only the literal addresses are bound
    and the notice says what was left out.
    """
    alias, problem, resolved = "", None, []
    if STACK_GATEWAY in binds:
        try:
            if client is None:
                from ops.docker_engine import connect

                client = connect()
            engine = engine or detect(client)
            if engine.bridge_on_host:
                alias = ensure_network(client, stack)
                resolved = [alias]
            elif engine.forwards_host_loopback:
                resolved = ["127.0.0.1"]
            else:
                problem = _UNREACHABLE[engine.kind].format(name=engine.name)
        except DockerError as exc:
            problem = exc.message
    # In the profile's order, ``stack-gateway`` replaced by what it resolved to.
    addresses = [a for bind in binds for a in (resolved if bind == STACK_GATEWAY else [bind])]
    if not addresses:
        addresses.append("127.0.0.1")
    addresses = list(dict.fromkeys(addresses))
    notice = None
    if problem:
        notice = f"containers cannot reach the gateway: {problem}; it listens on {', '.join(addresses)} only"
    return HostReach(tuple(addresses), alias, notice)


_UNREACHABLE = {
    "rootless": "{name} keeps its bridge in its own network namespace, which the host cannot listen on "
    "(`ops doctor` says what to do)",
    "remote": "{name} is another machine, whose containers cannot reach this machine's gateway",
}


def bind_addresses(binds: tuple[str, ...], stack: str, client=None) -> tuple[list[str], str | None]:
    """The addresses :func:`host_reach` binds, and its notice (for callers that need only those)."""
    reach = host_reach(binds, stack, client)
    return list(reach.addresses), reach.notice
