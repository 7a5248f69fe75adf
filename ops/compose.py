"""Export a stack's containers as a docker-compose file (the model host stays on the host)."""

from __future__ import annotations

import yaml

from ops.secrets import Secret
from ops.services.spec import HARDENING, ContainerSpec


def compose(specs: dict[str, ContainerSpec], reveal_secrets: bool = False) -> str:
    """A compose document equivalent to ``specs``; secrets become ``${VAR}`` references unless revealed."""
    doc: dict = {"name": next(iter(specs.values())).stack if specs else "ops", "services": {}, "volumes": {}}
    env_file: dict[str, str] = {}
    for name, spec in specs.items():
        environment = {}
        for key, value in spec.environment.items():
            if isinstance(value, Secret) and not reveal_secrets:
                var = f"{name.upper().replace('-', '_')}_{key}"
                environment[key] = "${" + var + "}"
                env_file[var] = ""
            else:
                environment[key] = value.reveal() if isinstance(value, Secret) else value
        service = {
            "image": spec.image,
            "restart": "unless-stopped",
            "ports": [f"{p.host_ip}:{p.host_port}:{p.container_port}/{p.protocol}" for p in spec.ports],
            "environment": environment,
            "extra_hosts": ["host.docker.internal:host-gateway"],
            "labels": {k: v for k, v in spec.labels().items() if k != "ops.spec-hash"},
            "cap_drop": list(HARDENING["cap_drop"]),
            "security_opt": list(HARDENING["security_opt"]),
            "mem_limit": spec.memory_bytes,
            "memswap_limit": spec.memory_bytes,
            "pids_limit": spec.pids,
            "logging": {"driver": HARDENING["log"]["type"], "options": dict(HARDENING["log"]["config"])},
        }
        if spec.cap_add:
            service["cap_add"] = list(spec.cap_add)
        mounts = []
        for m in spec.mounts:
            mounts.append(f"{m.source}:{m.target}{':ro' if m.read_only else ''}")
            if m.kind == "volume":
                doc["volumes"][m.source] = {"name": m.source}
        if mounts:
            service["volumes"] = mounts
        if spec.depends_on:
            service["depends_on"] = list(spec.depends_on)
        doc["services"][name] = service
    if not doc["volumes"]:
        del doc["volumes"]
    header = (
        "# Written by `ops export compose`. The model host and gateway stay on the host: start them with\n"
        "# `ops up` (or `ops host run`) first. Secrets are ${VARIABLES}: fill them from the stack's\n"
        "# secrets store (`ops status` says where) or export them before `docker compose up`.\n"
    )
    return header + yaml.safe_dump(doc, sort_keys=False)
