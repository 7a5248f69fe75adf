"""The ``network`` group, seen from the room: what is exposed where, and whether it speaks TLS with the stack's CA.

Without ``expose:`` the stack stays on this machine (loopback, and the gateway on the stack
network for the containers); the check says so, and warns where the profile publishes on
``0.0.0.0`` anyway. With it, each listener on the exposed address must complete a TLS handshake
with a certificate that verifies against the stack's CA for that IP address.
"""

from __future__ import annotations

import socket
import ssl

from ops.doctor import BaseCheck, Outcome, fail, ok, register, skipped, warn
from ops.doctor.context import DoctorContext
from ops.errors import OpsError

ANY = ("0.0.0.0", "::")


@register
class ExposureCheck(BaseCheck):
    """Says what the room can reach: nothing (loopback only) or the exposed address's TLS ports."""

    name = "network.exposure"
    group = "network"
    depends_on = ("host.profile",)
    timeout = 30.0

    def run(self, ctx: DoctorContext) -> Outcome:
        plan = ctx.plan
        if plan is None:
            return skipped("the profile did not load")
        wide = [f"gateway.bind {a}" for a in plan.gateway.bind if a in ANY]
        wide += [
            f"services.{n}.ports {p.host_ip}:{p.host_port}"
            for n, s in plan.enabled.items()
            for p in s.ports
            if p.host_ip in ANY
        ]
        every = (
            f"{', '.join(wide)} listen on every network, in plain http",
            "publish on 127.0.0.1 and use `expose: {address: LAN-ADDRESS}` for the room (TLS)",
        )
        if plan.expose is None:
            local = [f"{n} {s.url}" for n, s in plan.enabled.items() if s.ports]
            seen = f"loopback only: {', '.join([f'gateway {plan.gateway.url}', *local])}"
            return warn(f"{seen}; but {every[0]}", every[1]) if wide else ok(seen)
        expose = plan.expose
        from ops import exposure, tls

        try:
            exposure.check_address(expose.address)
        except OpsError as exc:
            return fail(exc.message, exc.hint or "fix expose.address")
        ca = tls.tls_dir(ctx.state().root) / "ca.pem"
        if not ca.exists():
            return fail(f"the stack has no CA yet ({ca})", f"`ops up {ctx.profile_arg}` makes it")
        fingerprint = tls.authority_of(ca).fingerprint
        bad: list[str] = []
        good: list[str] = []
        for listener in expose.listeners:
            what = f"{listener.name} https://{expose.host}:{listener.port}"
            problem = tls_problem(expose.address, listener.port, ca)
            (bad if problem else good).append(f"{what}: {problem}" if problem else what)
        if bad:
            host = ctx.host()
            fix = (
                f"`ops up {ctx.profile_arg}` (the model host runs the TLS listeners)"
                if not host.running
                else f"`ops restart {ctx.profile_arg} host`; see the host log {host.log_file}"
            )
            return fail(f"exposed on {expose.address}: {'; '.join(bad)}", fix)
        detail = f"exposed on {expose.address} over TLS (CA SHA-256 {fingerprint[:23]}...): {', '.join(good)}"
        return warn(f"{detail}; but {every[0]}", every[1]) if wide else ok(detail)


def tls_problem(address: str, port: int, ca_file, timeout: float = 5.0) -> str:
    """ "" when ``address:port`` completes a TLS handshake whose certificate the CA in ``ca_file``
    signed for ``address``; else what went wrong, in a few words."""
    context = ssl.create_default_context(cafile=str(ca_file))
    try:
        with (
            socket.create_connection((address, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=address),
        ):
            return ""
    except ssl.SSLCertVerificationError as exc:
        return f"certificate not from the stack's CA ({exc.verify_message})"
    except ssl.SSLError as exc:
        return f"no TLS ({exc.reason or exc})"
    except ConnectionRefusedError:
        return "nothing listens"
    except OSError as exc:
        return f"no answer ({exc.strerror or exc})"
