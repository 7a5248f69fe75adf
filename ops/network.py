"""The stack's Docker network, and the host addresses the gateway binds to.

Containers reach the host as ``host.docker.internal`` (mapped to ``host-gateway``) only when
the host service listens on the network's gateway address, so the gateway binds there and on
``127.0.0.1`` - never on ``0.0.0.0`` unless the profile lists it.
"""

from __future__ import annotations

import logging

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


def bind_addresses(binds: tuple[str, ...], stack: str, client=None) -> tuple[list[str], str | None]:
    """Resolve a profile's ``gateway.bind`` to IP addresses.

    ``stack-gateway`` becomes the stack network's gateway (the network is created if needed).
    Returns the addresses and, when Docker could not be asked, a notice saying what was left out.
    """
    addresses: list[str] = []
    problem = None
    for bind in binds:
        if bind != STACK_GATEWAY:
            addresses.append(bind)
            continue
        try:
            if client is None:
                from ops.docker_engine import connect

                client = connect()
            addresses.append(ensure_network(client, stack))
        except DockerError as exc:
            problem = exc.message
    if not addresses:
        addresses.append("127.0.0.1")
    addresses = list(dict.fromkeys(addresses))
    notice = None
    if problem is not None:
        notice = f"containers cannot reach the gateway: {problem}; it listens on {', '.join(addresses)} only"
    return addresses, notice
