"""The short string forms a profile writes for a service: published ports and mounts.

``[HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTO]`` and ``SOURCE:/container/path[:ro|rw]``, parsed into
frozen values at the edge (see ``schema.py``), like Compose's short syntax.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import BeforeValidator

_PORT = re.compile(
    r"^(?:(?P<ip>\d{1,3}(?:\.\d{1,3}){3}|localhost):)?(?P<host>\d+):(?P<container>\d+)(?:/(?P<proto>tcp|udp))?$"
)


@dataclass(frozen=True)
class PortMapping:
    """One published port: ``[HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTO]``."""

    host_ip: str
    host_port: int
    container_port: int
    protocol: str = "tcp"

    def __str__(self) -> str:
        return f"{self.host_ip}:{self.host_port}:{self.container_port}/{self.protocol}"

    @property
    def local_host(self) -> str:
        """Where this machine reaches the port: its address, or loopback for one published on every address."""
        return "127.0.0.1" if self.host_ip == "0.0.0.0" else self.host_ip


@dataclass(frozen=True)
class VolumeMount:
    """A named volume or host folder mounted at an absolute path in the container."""

    source: str
    target: str
    read_only: bool = False

    @property
    def is_bind(self) -> bool:
        """A host folder (``/abs``, ``./rel``, ``~/x``, Windows' ``C:\\data``) rather than a named volume."""
        return self.source.startswith(("/", ".", "~", "\\")) or bool(_DRIVE.match(self.source))


def _port(value: object) -> object:
    if isinstance(value, PortMapping):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f'expected "HOST:CONTAINER" (e.g. "3000:8080"), got {value}')
    if not isinstance(value, str):
        return value  # let pydantic report the type
    match = _PORT.match(value.strip())
    if not match:
        raise ValueError(f'expected "[HOST_IP:]HOST_PORT:CONTAINER_PORT" (e.g. "3000:8080"), got "{value}"')
    ip = match["ip"] or "127.0.0.1"
    if ip == "localhost":
        ip = "127.0.0.1"
    try:
        ipaddress.IPv4Address(ip)
    except ValueError:
        raise ValueError(f'"{ip}" in "{value}" is not an IPv4 address') from None
    host, container = int(match["host"]), int(match["container"])
    for port in (host, container):
        if not 1 <= port <= 65535:
            raise ValueError(f'port {port} in "{value}" is outside 1-65535')
    return PortMapping(ip, host, container, match["proto"] or "tcp")


_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


def _volume(value: object) -> object:
    if isinstance(value, VolumeMount) or not isinstance(value, str):
        return value
    # A Windows folder starts with its drive ("C:\data" or "C:/data"): that colon is the path's.
    drive = value[:2] if _DRIVE.match(value) else ""
    parts = value[len(drive) :].split(":")
    parts[0] = drive + parts[0]
    if len(parts) not in (2, 3) or not all(parts[:2]):
        raise ValueError(f'expected "SOURCE:/container/path[:ro]", got "{value}"')
    source, target = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise ValueError(f'mode must be "ro" or "rw", got "{mode}" in "{value}"')
    if not target.startswith("/"):
        raise ValueError(f'the container path must be absolute, got "{target}" in "{value}"')
    return VolumeMount(source, target, mode == "ro")


Port = Annotated[PortMapping, BeforeValidator(_port)]
Mount = Annotated[VolumeMount, BeforeValidator(_volume)]
