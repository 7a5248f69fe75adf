"""Whether an upgrade can be tried, decided before anything changes: every refusal is one line with a hint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ops import labels, versions
from ops.errors import OpsError, UsageError
from ops.services.spec import Mount

if TYPE_CHECKING:
    from ops.plan import ResolvedService, StackPlan


class UpgradeRefused(OpsError):
    """The new version failed on the copy or at the switch; the old version runs on its data."""


@dataclass(frozen=True)
class Decision:
    """One upgrade to try: the service as it runs and as it will run, and the data to carry."""

    stack: str
    service: ResolvedService
    new: ResolvedService
    #: The version the running container carries (its label; the plan's when it has none).
    current: str
    target: str
    volumes: tuple[Mount, ...]

    @property
    def name(self) -> str:
        return self.service.name


def data_volumes(service: ResolvedService) -> tuple[Mount, ...]:
    """The named volumes the service writes to: the data an upgrade must carry over."""
    return tuple(m for m in service.mounts if m.kind == "volume" and not m.read_only)


def running_version(container, service: ResolvedService) -> str:
    """The version ``container`` runs: its ``ops.version`` label, else (an older ops made it) the plan's."""
    return (container.labels or {}).get(labels.VERSION) or service.version


def decide(plan: StackPlan, name: str, target: str, running: dict) -> Decision:
    """The upgrade of service ``name`` to ``target``; ``running`` is the stack's containers by service.

    Raises :class:`UsageError` for an unknown or disabled service, one without a version or without
    data volumes, an invalid version, a stack that is not up, or the version it already runs.
    """
    service, volumes = check_request(plan, name, target)
    container = running.get(name)
    if container is None or container.status != "running":
        state = "missing" if container is None else container.status
        raise UsageError(
            f"stack {plan.name} is not up: the container of {name} is {state}",
            hint=f"run `ops up {plan.name}` first; an upgrade tries the new version against the running one",
        )
    current = running_version(container, service)
    if current == target:
        raise UsageError(f"service {name} already runs version {target}", hint="nothing to do")
    return Decision(plan.name, service, versions.apply(service, target), current, target, volumes)


def check_request(plan: StackPlan, name: str, target: str) -> tuple[ResolvedService, tuple[Mount, ...]]:
    """The checks that need nothing but the plan: the service and its data volumes, or a refusal."""
    service = plan.service(name)
    if not service.enabled:
        raise UsageError(
            f"service {name} is disabled in profile {plan.name}",
            hint=f"set services.{name}.enabled: true and run `ops up {plan.name}` first",
        )
    if not service.version:
        raise UsageError(
            f"service {name} has no version to upgrade",
            hint="a version is an image's tag (image: name:tag) or the build argument its kind names",
        )
    versions.check(target, "--to")
    volumes = data_volumes(service)
    if not volumes:
        raise UsageError(
            f"service {name} keeps no data in a volume: there is nothing an upgrade must protect",
            hint=f"set services.{name}.version: {target} in the profile and run `ops up {plan.name}`",
        )
    versions.apply(service, target)  # a version the service cannot take (contradicting build args)
    return service, volumes


def pending(plan: StackPlan, running: dict) -> list[Decision]:
    """The upgrades ``ops up`` makes the guarded way: each running service with data volumes whose
    container carries another version (its label) than the plan says."""
    found = []
    for name, service in plan.enabled.items():
        container = running.get(name)
        if container is None or container.status != "running" or not service.version:
            continue
        label = (container.labels or {}).get(labels.VERSION)
        volumes = data_volumes(service)
        if label and label != service.version and volumes:
            found.append(Decision(plan.name, service, service, label, service.version, volumes))
    return found
