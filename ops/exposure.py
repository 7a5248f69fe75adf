"""What a stack shows the room: the exposed address, and a TLS listener per published port.

A profile's ``expose: {address, gateway}`` is resolved once, with the rest of the plan
(:mod:`ops.plan`), into an :class:`ExposePlan`: for each enabled service's published ports and,
with ``gateway: true``, the gateway's port, a :class:`Listener` on the exposed address with the
same port number, forwarding to where this machine reaches that port on loopback. The model host
runs the listeners (:mod:`ops.host.tlsproxy`), with the certificate of :mod:`ops.tls`.

Nothing listens on the address without ``expose:``; nothing here ever listens on ``0.0.0.0``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ops.errors import ProfileError

if TYPE_CHECKING:
    from ops.profiles.classroom import ExposeSpec
    from ops.profiles.mappings import PortMapping

#: The listener name of the gateway (services are named by the profile; ``gateway`` is not a kind).
GATEWAY = "gateway"
_LOOPBACK = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class Listener:
    """One TLS listener: ``address:port`` on the LAN, forwarded to ``target_host:target_port``."""

    name: str  # the service's name, or "gateway"
    port: int
    target_host: str
    target_port: int


@dataclass(frozen=True)
class ExposePlan:
    """The exposure of one stack: its LAN address and every listener on it."""

    address: str
    listeners: tuple[Listener, ...]
    gateway: bool

    @property
    def host(self) -> str:
        """The address as it goes into a URL (IPv6 in brackets)."""
        return f"[{self.address}]" if ":" in self.address else self.address

    def url(self, name: str) -> str:
        """``https://ADDRESS:PORT`` of service ``name`` (its first port) or of the gateway's OpenAI API."""
        for listener in self.listeners:
            if listener.name == name:
                base = f"https://{self.host}:{listener.port}"
                return f"{base}/v1" if name == GATEWAY else base
        return ""

    @property
    def urls(self) -> dict[str, str]:
        """Every exposed name -> its public URL, in listener order."""
        return {n: self.url(n) for n in dict.fromkeys(x.name for x in self.listeners)}

    @property
    def ports(self) -> tuple[int, ...]:
        """The ports the listeners take on the address."""
        return tuple(x.port for x in self.listeners)


def resolve(
    spec: ExposeSpec | None,
    services: Iterable[tuple[str, tuple[PortMapping, ...]]],
    gateway_port: int,
    gateway_bind: tuple[str, ...],
) -> ExposePlan | None:
    """The exposure ``spec`` asks for, given the enabled services' published ports and the gateway's
    port and addresses, or ``None``; a profile that cannot be exposed stops here, in one line."""
    if spec is None:
        return None
    listeners: list[Listener] = []
    for name, published in services:
        for port in published:
            if port.protocol != "tcp":
                continue
            _not_already_public(port.host_ip, spec.address, f"services.{name}.ports")
            listeners.append(Listener(name, port.host_port, _loopback(port.host_ip), port.host_port))
    if spec.gateway:
        for address in gateway_bind:
            _not_already_public(address, spec.address, "gateway.bind")
        target = next((a for a in _LOOPBACK if a in gateway_bind), None)
        if target is None:
            raise ProfileError(
                "expose.gateway needs the gateway on loopback: the TLS listener forwards to 127.0.0.1",
                hint='add "127.0.0.1" to gateway.bind, or set expose.gateway: false',
            )
        listeners.append(Listener(GATEWAY, gateway_port, target, gateway_port))
    seen: dict[int, str] = {}
    for listener in listeners:
        if listener.port in seen:
            raise ProfileError(
                f"port {listener.port} is published by both {seen[listener.port]} and {listener.name}",
                hint="give each service its own host port",
            )
        seen[listener.port] = listener.name
    return ExposePlan(spec.address, tuple(listeners), spec.gateway)


def check_address(address: str) -> None:
    """Raise a one-line :class:`ProfileError` unless ``address`` belongs to one of this machine's interfaces."""
    import psutil

    wanted = ipaddress.ip_address(address)
    have: list[str] = []
    for interface, addrs in psutil.net_if_addrs().items():
        for a in addrs:
            if a.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            try:
                ip = ipaddress.ip_address(a.address.split("%")[0])
            except ValueError:
                continue
            if ip == wanted:
                return
            if not (ip.is_loopback or ip.is_link_local):
                have.append(f"{ip} ({interface})")
    raise ProfileError(
        f"expose.address {address} is not an address of this machine",
        hint=f"use one of: {', '.join(have) or 'none found (is the network up?)'}",
    )


def _loopback(host_ip: str) -> str:
    return "127.0.0.1" if host_ip in ("0.0.0.0", "") else host_ip


def _not_already_public(host_ip: str, address: str, where: str) -> None:
    """A port already published on every address (or on the LAN address itself, in plain http) cannot
    also take a TLS listener there: the room would reach it unencrypted."""
    if host_ip in ("0.0.0.0", "::") or host_ip == address:
        raise ProfileError(
            f"{where} publishes on {host_ip}, so the room would reach it without TLS",
            hint='publish on 127.0.0.1 (e.g. "127.0.0.1:3000:8080"): expose: puts TLS in front on the LAN address',
        )
