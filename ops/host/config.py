"""What the model host serves, resolved by the parent and handed to the child as a file.

``ops up`` resolves the profile once (:mod:`ops.plan`): the gateway's addresses and port and the
models' plan (including whether the Foundry catalog answered). The host process it starts reads
this file instead of parsing the profile and asking the catalog again. The file holds no secret:
keys stay in the stack's secrets store, remote models name only the variable that holds theirs.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ops.private import open_private
from ops.profiles.schema import GatewaySpec, ModelSpec

if TYPE_CHECKING:
    from ops.exposure import ExposePlan
    from ops.plan import ModelPlan, StackPlan
    from ops.tls import Authority

#: Bumped when the file's shape changes; a host never reads a file of another version.
VERSION = 1


@dataclass(frozen=True)
class HostModel:
    """One model the host serves (``use``) or names as skipped, with its folder when it has one."""

    alias: str
    spec: ModelSpec
    folder: Path | None
    use: bool
    reason: str


@dataclass(frozen=True)
class HostExposure:
    """The TLS listeners the host runs on the exposed address (:mod:`ops.host.tlsproxy`)."""

    address: str
    #: (port on the address, loopback host, loopback port) for each listener.
    listeners: tuple[tuple[int, str, int], ...]
    certificate: str  # PEM chain: the server certificate, then the stack's CA
    key: str
    #: The server certificate's SHA-256: a new certificate means the host restarts to load it.
    certificate_sha256: str

    @classmethod
    def prepare(cls, expose: ExposePlan, root: Path) -> tuple[HostExposure, Authority]:
        """Before the host starts: the stack's CA (made once, in the state folder ``root``) and a server
        certificate for the address (issued again when it changed or nears its end)."""
        from ops import tls

        authority = tls.ensure_authority(root)
        cert = tls.ensure_server_certificate(root, expose.address)
        listeners = tuple((x.port, x.target_host, x.target_port) for x in expose.listeners)
        return cls(
            expose.address, listeners, str(cert.certificate), str(cert.key), cert.fingerprint
        ), authority

    def to_json(self) -> dict[str, Any]:
        """The file's ``expose`` entry."""
        return {**self.__dict__, "listeners": [list(x) for x in self.listeners]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HostExposure:
        """Read what :meth:`to_json` wrote."""
        listeners = tuple((int(p), str(h), int(t)) for p, h, t in data["listeners"])
        return cls(data["address"], listeners, data["certificate"], data["key"], data["certificate_sha256"])


@dataclass(frozen=True)
class HostConfig:
    """Everything the host needs: where to listen, the gateway's settings, the models."""

    stack: str
    profile: str
    port: int
    addresses: tuple[str, ...]
    gateway: GatewaySpec
    models: tuple[HostModel, ...]
    #: TLS listeners on the exposed LAN address (``expose:``), or ``None``.
    expose: HostExposure | None = None
    #: Tokens each participant may use in any hour (``participants.tokens_per_hour``), or ``None``.
    tokens_per_hour: int | None = None

    @classmethod
    def from_plan(
        cls, plan: StackPlan, addresses: list[str], expose: HostExposure | None = None
    ) -> HostConfig:
        """The host's part of ``plan``, listening on ``addresses`` (``stack-gateway`` already resolved)."""
        return cls(
            stack=plan.name,
            profile=str(plan.path),
            port=plan.gateway.port,
            addresses=tuple(addresses),
            gateway=plan.gateway.spec,
            models=tuple(_model(m) for m in plan.models),
            expose=expose,
            tokens_per_hour=_quota(plan),
        )

    def fingerprint(self) -> str:
        """A digest of what the host's behaviour depends on: a change means a restart."""
        data = {
            "models": {m.alias: m.spec.model_dump(mode="json") for m in self.models},
            "dirs": {m.alias: str(m.folder) for m in self.models if m.folder is not None},
            "gateway": self.gateway.model_dump(mode="json"),
        }
        if self.expose is not None:  # absent without expose: a host started before it is not restarted
            data["expose"] = self.expose.to_json()
        if self.tokens_per_hour is not None:  # likewise: the quota is read at start, a change restarts
            data["tokens_per_hour"] = self.tokens_per_hour
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        """The file's content."""
        return {
            "version": VERSION,
            "stack": self.stack,
            "profile": self.profile,
            "port": self.port,
            "addresses": list(self.addresses),
            "gateway": self.gateway.model_dump(mode="json"),
            "expose": self.expose.to_json() if self.expose else None,
            "tokens_per_hour": self.tokens_per_hour,
            "models": [
                {
                    "alias": m.alias,
                    "spec": m.spec.model_dump(mode="json", exclude_none=True),
                    "folder": str(m.folder) if m.folder is not None else None,
                    "use": m.use,
                    "reason": m.reason,
                }
                for m in self.models
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HostConfig:
        """Read what :meth:`to_json` wrote; raises ``ValueError`` on another version or shape."""
        if data.get("version") != VERSION:
            raise ValueError(f"host config version {data.get('version')!r}, expected {VERSION}")
        return cls(
            stack=data["stack"],
            profile=data["profile"],
            port=int(data["port"]),
            addresses=tuple(data["addresses"]),
            gateway=GatewaySpec.model_validate(data["gateway"]),
            models=tuple(
                HostModel(
                    m["alias"],
                    ModelSpec.model_validate(m["spec"]),
                    Path(m["folder"]) if m.get("folder") else None,
                    bool(m["use"]),
                    m["reason"],
                )
                for m in data["models"]
            ),
            expose=HostExposure.from_json(data["expose"]) if data.get("expose") else None,
            tokens_per_hour=data.get("tokens_per_hour"),
        )

    def write(self, path: Path) -> None:
        """Write the file atomically, readable by its owner only."""
        tmp = path.with_suffix(".tmp")
        fd = open_private(tmp, os.O_WRONLY | os.O_TRUNC)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(self.to_json(), out, indent=2)
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: Path) -> HostConfig:
        """Read the file at ``path``; raises ``OSError`` or ``ValueError``."""
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))


def _quota(plan: StackPlan) -> int | None:
    participants = plan.loaded.profile.participants
    return participants.tokens_per_hour if participants is not None else None


def _model(plan: ModelPlan) -> HostModel:
    assert plan.spec is not None  # every plan made by ops.plan carries its spec
    return HostModel(plan.alias, plan.spec, plan.folder, plan.use, plan.reason)
