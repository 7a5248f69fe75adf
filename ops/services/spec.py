"""From a profile's service entry to the exact container ``ops`` wants: the wanted state of reconcile.

A :class:`ContainerSpec` holds everything that decides the container (image id, ports, mounts,
environment, network, restart policy); its :meth:`~ContainerSpec.spec_hash` is stored in the
``ops.spec-hash`` label, so a later ``ops up`` replaces exactly the containers whose spec changed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from ops import labels
from ops.network import network_name
from ops.probes import ContainerProbe, HttpProbe, Probe, TcpProbe
from ops.profiles.mappings import PortMapping
from ops.profiles.resources import DEFAULT_MEMORY, DEFAULT_PIDS, size_bytes
from ops.profiles.schema import HealthSpec
from ops.secrets import Secret

#: What every container gets: no Linux capability (a kind or profile adds back only what it needs),
#: no privilege gained through setuid binaries, and a rotated log (json-file, 3 files of 10 MB).
HARDENING: dict = {
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges:true"],
    "log": {"type": "json-file", "config": {"max-size": "10m", "max-file": "3"}},
}


@dataclass(frozen=True)
class Mount:
    """A named volume (``ops-<stack>-<name>``) or a host folder, at ``target``."""

    kind: str  # "volume" or "bind"
    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    """The container ``ops`` wants for one service."""

    stack: str
    service: str
    kind: str
    image: str
    ports: tuple[PortMapping, ...]
    mounts: tuple[Mount, ...]
    environment: dict[str, str | Secret] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    health: HealthSpec = field(default_factory=HealthSpec)
    #: The HTTP path the readiness probe asks: the profile's ``health.http``, else the kind's.
    health_path: str | None = None
    image_id: str = ""
    #: What ``host.docker.internal`` resolves to inside the container: on a Linux engine the stack
    #: network's gateway address, where the gateway listens (Docker's ``host-gateway`` would be the
    #: default bridge's); ``""`` keeps the engine's own name (Docker Desktop's, see ``ops.engines``).
    host_gateway: str = "host-gateway"
    #: Limits: memory in bytes (no swap beyond it) and processes plus threads.
    memory_bytes: int = size_bytes(DEFAULT_MEMORY)
    pids: int = DEFAULT_PIDS
    #: Capabilities given back; every other one is dropped (see :data:`HARDENING`).
    cap_add: tuple[str, ...] = ()
    #: The version it runs (label ``ops.version``, not part of the spec hash: the image id is).
    version: str = ""

    @property
    def name(self) -> str:
        """Container name: ``ops-<stack>-<service>``."""
        return container_name(self.stack, self.service)

    @property
    def network(self) -> str:
        """The stack's network."""
        return network_name(self.stack)

    def spec_hash(self) -> str:
        """A digest of everything that decides the container (secret values only as part of the digest)."""
        data = {
            "image": self.image,
            "image_id": self.image_id,
            "ports": [str(p) for p in self.ports],
            "mounts": [m.__dict__ for m in self.mounts],
            "env": {
                k: v.reveal() if isinstance(v, Secret) else v for k, v in sorted(self.environment.items())
            },
            "network": self.network,
            "host_gateway": self.host_gateway,
            "memory": self.memory_bytes,
            "pids": self.pids,
            "cap_add": list(self.cap_add),
            "hardening": HARDENING,
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def labels(self) -> dict[str, str]:
        """Labels that let ``status``, ``down`` and clean-up find exactly this container."""
        found = {labels.STACK: self.stack, labels.SERVICE: self.service, labels.SPEC_HASH: self.spec_hash()}
        return {**found, labels.VERSION: self.version} if self.version else found

    def create_kwargs(self) -> dict:
        """Keyword arguments for ``client.containers.create``."""
        ports: dict[str, list[tuple[str, int]]] = {}
        for p in self.ports:
            ports.setdefault(f"{p.container_port}/{p.protocol}", []).append((p.host_ip, p.host_port))
        return {
            "image": self.image_id or self.image,
            "name": self.name,
            "detach": True,
            "labels": self.labels(),
            "environment": {
                k: v.reveal() if isinstance(v, Secret) else str(v) for k, v in self.environment.items()
            },
            "ports": ports,
            "mounts": [_docker_mount(m) for m in self.mounts],
            "network": self.network,
            "hostname": self.service,
            # Containers reach the gateway on the host by this name; Docker Desktop has it built in.
            "extra_hosts": {"host.docker.internal": self.host_gateway} if self.host_gateway else {},
            "restart_policy": {"Name": "unless-stopped"},
            "cap_drop": list(HARDENING["cap_drop"]),
            "cap_add": list(self.cap_add),
            "security_opt": list(HARDENING["security_opt"]),
            "mem_limit": self.memory_bytes,
            "memswap_limit": self.memory_bytes,  # the same: no swap on top of the limit
            "pids_limit": self.pids,
            "log_config": _log_config(),
        }

    def probe(self, container=None) -> Probe:
        """The readiness probe: the health path (the profile's, else the kind's) on the first published port."""
        health = self.health
        port = self._host_port(health.port)
        if health.tcp and port:
            return TcpProbe(port.local_host, port.host_port)
        if self.health_path and port:
            return HttpProbe(
                f"http://{port.local_host}:{port.host_port}{self.health_path}",
                status=health.status,
                body=health.body,
            )
        return ContainerProbe(container)

    @property
    def url(self) -> str:
        """The service's base URL on this machine (its first published port), or empty."""
        return f"http://{self.ports[0].local_host}:{self.ports[0].host_port}" if self.ports else ""

    @property
    def timeout(self) -> float:
        """Seconds to wait for readiness."""
        return self.health.timeout

    def _host_port(self, container_port: int | None) -> PortMapping | None:
        for p in self.ports:
            if container_port is None or p.container_port == container_port:
                return p
        return None


def container_name(stack: str, service: str) -> str:
    """Name of a service's container."""
    return f"ops-{stack}-{service}"


def volume_name(stack: str, volume: str) -> str:
    """Docker name of a profile's named volume."""
    return f"ops-{stack}-{volume}"


def _env_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _log_config():
    from docker.types import LogConfig

    return LogConfig(type=HARDENING["log"]["type"], config=dict(HARDENING["log"]["config"]))


def _docker_mount(mount: Mount):
    from docker.types import Mount as DockerMount

    return DockerMount(target=mount.target, source=mount.source, type=mount.kind, read_only=mount.read_only)
