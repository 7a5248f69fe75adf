"""Idempotent reconcile: compare the containers a stack wants with what runs, change only what differs.

Wanted state is a set of :class:`~ops.services.spec.ContainerSpec`; current state is found by
label. Services start in dependency waves: every service of a wave starts in parallel, and a
wave starts only when the previous one is ready.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass

import docker.errors

from ops import interrupt, labels
from ops.docker_engine import Container, Volume, refused
from ops.errors import DockerError, ProbeTimeout
from ops.network import ensure_network, network_name
from ops.probes import wait_for
from ops.profiles.mappings import PortMapping
from ops.services.spec import ContainerSpec

Say = Callable[[str], None]


@dataclass(frozen=True)
class Action:
    """What reconcile does to one service: create, replace, start or keep."""

    service: str
    verb: str
    reason: str


@dataclass(frozen=True)
class Plan:
    """Every action of one ``ops up``, decided before anything changes."""

    stack: str
    actions: tuple[Action, ...]
    volumes_to_create: tuple[str, ...]
    network_exists: bool

    @property
    def changes(self) -> bool:
        """True when something will be created, replaced or started."""
        return (
            bool(self.volumes_to_create)
            or not self.network_exists
            or any(a.verb != "keep" for a in self.actions)
        )


def containers(client, stack: str) -> dict[str, Container]:
    """The stack's containers by service name (running or not)."""
    found = client.containers.list(all=True, filters={"label": f"{labels.STACK}={stack}"})
    return {c.labels.get(labels.SERVICE, c.name): c for c in found}


def published_ports(container) -> list[PortMapping]:
    """The ports Docker publishes for ``container``, read back from its host config (the one place that parses them)."""
    result = []
    bindings = (container.attrs.get("HostConfig") or {}).get("PortBindings") or {}
    for port, entries in bindings.items():
        number, _, protocol = port.partition("/")
        for entry in entries or []:
            if entry.get("HostPort"):
                host_ip = entry.get("HostIp") or "0.0.0.0"
                result.append(PortMapping(host_ip, int(entry["HostPort"]), int(number), protocol or "tcp"))
    return result


def volumes(client, stack: str) -> dict[str, Volume]:
    """The stack's named volumes by their Docker name."""
    return {v.name: v for v in client.volumes.list(filters={"label": f"{labels.STACK}={stack}"})}


def plan(client, stack: str, specs: dict[str, ContainerSpec]) -> Plan:
    """Compare wanted with current; nothing is changed here."""
    current = containers(client, stack)
    actions = []
    for name, spec in specs.items():
        container = current.get(name)
        if container is None:
            actions.append(Action(name, "create", "missing"))
        elif container.labels.get(labels.SPEC_HASH) != spec.spec_hash():
            actions.append(Action(name, "replace", "its spec changed"))
        elif container.status != "running":
            actions.append(Action(name, "start", f"it is {container.status}"))
        else:
            actions.append(Action(name, "keep", "unchanged and running"))
    for name in sorted(set(current) - set(specs)):
        actions.append(Action(name, "remove", "no longer in the profile"))
    existing = {v.name for v in client.volumes.list()}
    wanted = sorted({m.source for s in specs.values() for m in s.mounts if m.kind == "volume"})
    # Docker's name filter matches substrings (ops-dev finds ops-dev-2): compare the exact name.
    has_network = any(
        n.name == network_name(stack) for n in client.networks.list(names=[network_name(stack)])
    )
    return Plan(stack, tuple(actions), tuple(v for v in wanted if v not in existing), has_network)


def waves(specs: dict[str, ContainerSpec]) -> list[list[str]]:
    """Services grouped so that each group depends only on earlier groups (the profile has no cycles)."""
    done: set[str] = set()
    result = []
    remaining = dict(specs)
    while remaining:
        ready = sorted(
            n for n, s in remaining.items() if all(d in done or d not in specs for d in s.depends_on)
        )
        if not ready:  # profile checks refuse cycles; never loop forever on one that got past them
            raise ValueError(f"dependency cycle among {', '.join(sorted(remaining))}")
        result.append(ready)
        done.update(ready)
        for name in ready:
            del remaining[name]
    return result


def apply(
    client,
    the_plan: Plan,
    specs: dict[str, ContainerSpec],
    say: Say,
    volume_labels: dict[str, dict[str, str]] | None = None,
) -> dict[str, Container]:
    """Carry the plan out, wave by wave, waiting for each service's probe; returns the containers.

    New volumes get ``volume_labels[name]`` (the profile's ``volumes.*.labels``) besides the stack's own.
    """
    ensure_network(client, the_plan.stack)
    for name in the_plan.volumes_to_create:
        extra = (volume_labels or {}).get(name, {})
        with refused(f"create volume {name}"):
            client.volumes.create(name, labels={**extra, labels.STACK: the_plan.stack, labels.VOLUME: name})
        say(f"volume {name} created")
    verbs = {a.service: a.verb for a in the_plan.actions}
    current = containers(client, the_plan.stack)
    for action in the_plan.actions:
        if action.verb == "remove":
            with refused(f"remove the container of {action.service}"):
                current.pop(action.service).remove(force=True)
            say(f"{action.service}: removed ({action.reason})")
    result: dict[str, Container] = {}
    for wave in waves(specs):
        with concurrent.futures.ThreadPoolExecutor(max(1, len(wave))) as pool:
            futures = {
                pool.submit(_converge, client, specs[n], verbs[n], current.get(n), say): n for n in wave
            }
            errors = []
            for future in interrupt.as_completed(futures):
                try:
                    result[futures[future]] = future.result()
                except (ProbeTimeout, DockerError) as exc:
                    errors.append(exc)
            if errors:
                raise errors[0]
    return result


def _converge(client, spec: ContainerSpec, verb: str, container, say: Say):
    interrupt.check()  # after Ctrl-C, start nothing new
    if verb == "replace" and container is not None:
        with refused(f"remove {spec.name} to replace it"):
            container.remove(force=True)
        container = None
    try:
        if container is None:
            container = client.containers.create(**spec.create_kwargs())
            container.start()
            say(f"{spec.service}: {'replaced' if verb == 'replace' else 'created'} and started")
        elif verb == "start":
            container.start()
            say(f"{spec.service}: started")
    except docker.errors.APIError as exc:
        raise DockerError(
            f"{spec.service}: Docker refused to start {spec.name}: {exc.explanation or exc}",
            hint="see `ops status` and `ops logs`; a port may be taken by another program",
        ) from None
    wait_ready(spec, container, say)
    return container


def wait_ready(spec: ContainerSpec, container, say: Say) -> None:
    """Wait for the service's probe; a container that keeps crashing ends the wait early."""

    def crashed() -> str | None:
        try:
            container.reload()
        except docker.errors.NotFound:
            return "the container is gone"
        state = container.attrs.get("State", {})
        restarts = container.attrs.get("RestartCount", 0)
        if state.get("Status") in ("exited", "dead") or restarts >= 3:
            return f"the container {state.get('Status')} (exit code {state.get('ExitCode')}, {restarts} restarts)"
        return None

    def evidence() -> list[str]:
        try:
            return container.logs(tail=30).decode("utf-8", "replace").splitlines()
        except docker.errors.APIError:
            return []

    probe = spec.probe(container)
    wait_for(
        probe,
        spec.timeout,
        interval=spec.health.interval,
        evidence=evidence,
        fail_fast=crashed,
        hint=f"`ops logs {spec.stack} {spec.service}` shows the whole log; raise `health.timeout` if it is only slow",
    )
    say(f"{spec.service}: ready ({probe.target})")
