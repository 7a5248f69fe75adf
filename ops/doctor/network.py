"""The ``network`` group: TLS and the CA bundle, registries, ports (the view from containers is in ``reach``).

Everything that may leave the machine is asked with a short timeout, so doctor answers quickly
where the network is absent or silently drops packets.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Callable
from typing import cast
from urllib.parse import urlparse

from ops import labels
from ops.doctor import BaseCheck, Outcome, fail, ok, profile_of, register, warn
from ops.doctor.context import DoctorContext
from ops.doctor.images import missing_images, registries
from ops.errors import ConflictError
from ops.reconcile import published_ports

#: Seconds to wait for anything on the internet.
NET_TIMEOUT = 3.0
DEFAULT_INDEX = "https://pypi.org/simple/"


@register
class CaBundleCheck(BaseCheck):
    """The CA bundle image builds get, and whether TLS to the package index is intercepted."""

    name = "network.ca-bundle"
    group = "network"
    timeout = 15.0

    def run(self, ctx: DoctorContext) -> Outcome:
        from ops.images.build import default_ca_bundle

        bundle = default_ca_bundle()
        if bundle is None:
            return warn(
                "no CA bundle found (SSL_CERT_FILE, REQUESTS_CA_BUNDLE, PIP_CERT or /etc/ssl/certs/ca-certificates.crt)",
                "install the system's CA certificates (`apt-get install ca-certificates`) or set SSL_CERT_FILE",
            )
        count = bundle.read_text(encoding="utf-8", errors="replace").count("BEGIN CERTIFICATE")
        index = os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX
        host, port = _host_port(index)
        seen = f"{bundle} ({count} certificates)"
        trusted = _handshake(host, port, str(bundle))
        if trusted.startswith("unreachable"):
            pending = missing_images(ctx)
            detail = f"{seen}; {host}: {trusted}, so whether TLS is intercepted cannot be told"
            if pending:
                return warn(detail, "image builds download packages: connect to the network, then `ops up`")
            return ok(detail + " (every image is already here)")
        if trusted.startswith("verify failed"):
            return warn(
                f"{seen}; TLS to {host} fails with it: {trusted.removeprefix('verify failed: ')} "
                "(a proxy intercepts TLS with a CA this bundle lacks)",
                "add your proxy's CA certificate: point SSL_CERT_FILE at a bundle that has it, or set "
                "`services.NAME.build.ca_bundle` in the profile",
            )
        import certifi

        public = _handshake(host, port, certifi.where())
        if public.startswith("verify failed"):
            return ok(
                f"{seen}; TLS to {host} is intercepted (issuer {trusted}); this bundle trusts it and "
                "image builds get it"
            )
        return ok(f"{seen}; TLS to {host} is not intercepted (issuer {trusted})")


def _host_port(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "pypi.org", parsed.port or (443 if parsed.scheme != "http" else 80)


def _handshake(host: str, port: int, cafile: str) -> str:
    """The leaf's issuer when TLS verifies with ``cafile``; else ``verify failed: ...`` or ``unreachable: ...``."""
    context = ssl.create_default_context(cafile=cafile)
    try:
        with (
            socket.create_connection((host, port), timeout=NET_TIMEOUT) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            cert = tls.getpeercert() or {}  # a verified handshake always has the peer's certificate
            # The issuer's relative distinguished names: ((("commonName", "R11"),), ...)
            rdns = cast(tuple[tuple[tuple[str, str], ...], ...], cert.get("issuer", ()))
            issuer = dict(pair[0] for pair in rdns)
            return issuer.get("commonName") or issuer.get("organizationName") or "unknown"
    except ssl.SSLCertVerificationError as exc:
        return f"verify failed: {exc.verify_message or exc.reason}"
    except TimeoutError:
        return f"unreachable: no answer within {NET_TIMEOUT:g} s"
    except (OSError, ssl.SSLError) as exc:
        return f"unreachable: {exc.strerror or exc}"


@register
class RegistryCheck(BaseCheck):
    """The registries the profile's images come from answer (only matters for images not here yet)."""

    name = "network.registry"
    group = "network"
    timeout = 20.0

    def run(self, ctx: DoctorContext) -> Outcome:
        pending = missing_images(ctx)
        answers = {registry: _registry(registry) for registry in registries(ctx)}
        reach = "; ".join(f"{r}: {a}" for r, a in answers.items()) or "no registry named"
        if pending is None:
            bad = [r for r, a in answers.items() if a != "reachable"]
            detail = f"{reach} (Docker is not reachable, so which images are here is unknown)"
            return (
                warn(detail, "make the registry reachable, or build images from recipes")
                if bad
                else ok(detail)
            )
        if not pending:
            return ok(f"not needed: every image is on this machine ({reach})")
        problems: list[str] = []
        fixes: list[str] = []
        worst: Callable[[str, str], Outcome] | None = None  # warn or fail, once an image is at risk
        for missing in pending:
            answer = answers.get(missing.registry, "reachable")
            if not missing.registry or answer == "reachable":
                continue
            if missing.policy == "pull" or not missing.has_recipe:
                problems.append(
                    f"{missing.service}: {missing.image} cannot be pulled ({missing.registry}: {answer})"
                )
                fixes.append(
                    f"make {missing.registry} reachable, or set `services.{missing.service}.image_policy: "
                    "pull-or-build` with a recipe"
                )
                worst = fail
            else:
                problems.append(
                    f"{missing.service}: {missing.image} cannot be pulled; `ops up` will build it instead"
                )
                fixes.append(
                    f"`ops images build {ctx.profile_arg} {missing.service}` builds it ahead of time"
                )
                worst = warn if worst is None else worst
        if worst is None:
            return ok(f"{len(pending)} image(s) to fetch or build; {reach}")
        return worst("; ".join(problems), "; ".join(dict.fromkeys(fixes)))


def _registry(registry: str) -> str:
    """``reachable`` when ``https://REGISTRY/v2/`` answers at all (401 counts), else why not."""
    import httpx

    try:
        httpx.get(f"https://{registry}/v2/", timeout=NET_TIMEOUT)
    except httpx.TimeoutException:
        return f"no answer within {NET_TIMEOUT:g} s"
    except httpx.HTTPError as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"unreachable ({text})"
    return "reachable"


@register
class PortsCheck(BaseCheck):
    """Every port the profile needs is free, or held by this stack; otherwise name the holder."""

    name = "network.ports"
    group = "network"
    depends_on = ("host.profile",)

    def run(self, ctx: DoctorContext) -> Outcome:
        from ops.host import ports
        from ops.profiles.schema import STACK_GATEWAY

        client = ctx.docker_or_none()
        gateway = profile_of(ctx).profile.gateway
        wanted: dict[tuple[str, int], str] = {}
        for bind in gateway.bind:
            address: str | None = bind
            if bind == STACK_GATEWAY:
                address = ctx.network_gateway() if client is not None else None
            if address:
                wanted[(address, gateway.port)] = "gateway"
        for name, spec in ctx.specs().items():
            for port in spec.ports:
                wanted.setdefault((port.host_ip, port.host_port), f"service {name}")
        ours, host_pid = _our_ports(ctx, client)
        problems, fixes, unknown = [], [], []
        for (address, port), owner in wanted.items():
            if (address, port) in ours or ("0.0.0.0", port) in ours:
                continue
            try:
                ports.check_free([address], port)
                continue
            except ConflictError as exc:
                if "already in use" not in exc.message:
                    problems.append(f"{owner}: {exc.message}")
                    fixes.append(exc.hint or "")
                    continue
            who = ports.holder(port)
            if who and host_pid and who.endswith(f"(pid {host_pid})"):
                continue
            if who and "docker-proxy" in who:
                if client is None:
                    # Some container publishes it; without Docker, whose cannot be told.
                    unknown.append(f"{owner}: port {port} on {address} is published by a container ({who})")
                    continue
                who = _publisher(client, port) or who
            problems.append(
                f"{owner}: port {port} on {address} is held by {who or 'another process'}, not this stack"
            )
            setting = "gateway.port" if owner == "gateway" else f"services.{owner.split()[1]}.ports"
            fixes.append(f"stop {who or 'that process'} or change `{setting}` in the profile")
        listed = ", ".join(f"{a}:{p}" for a, p in wanted)
        then = f"; then `ops up {ctx.profile_arg}`"
        if problems:
            return fail("; ".join(problems + unknown), "; ".join(dict.fromkeys(fixes)) + then)
        if unknown:
            return warn(
                "; ".join(unknown) + "; Docker is not reachable to say whether that is this stack",
                "start Docker (see docker.daemon), then run `ops doctor` again",
            )
        return ok(f"free or held by this stack: {listed}")


def _our_ports(ctx: DoctorContext, client) -> tuple[set[tuple[str, int]], int | None]:
    """The (address, port) pairs this stack holds now, and the running host's pid."""
    ours: set[tuple[str, int]] = set()
    host = ctx.host()
    host_pid = None
    if host.running and host.info:
        host_pid = host.info.pid
        ours.update((address, host.info.port) for address in host.info.addresses)
    if client is not None:
        for container in ctx.containers().values():
            if container.status != "running":
                continue
            ours.update((p.host_ip, p.host_port) for p in published_ports(container))
    return ours, host_pid


def _publisher(client, port: int) -> str | None:
    """``container NAME (stack S)`` publishing ``port``, when Docker can say."""
    if client is None:
        return None
    import docker.errors
    import requests

    try:
        found = client.containers.list(filters={"publish": str(port)})
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return None
    if not found:
        return None
    container = found[0]
    stack = container.labels.get(labels.STACK)
    return f"container {container.name}" + (f" (stack {stack})" if stack else "")
