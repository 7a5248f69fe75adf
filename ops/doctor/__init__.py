"""``ops doctor``: small checks that find what is wrong with a stack and say how to fix it.

A check implements the :class:`Check` protocol: a ``name``, a ``group``, the names of the checks
it ``depends_on``, a ``timeout``, and ``run(ctx)`` returning an :class:`Outcome` (``ok``,
``warn``, ``fail`` or ``skipped``, a one-line detail, and the fix when not ok). Check classes are
registered by name with :func:`register`; the built-in groups register themselves the same way a
plug-in would. A class with ``features`` set is instantiated once per enabled service whose kind
has all of those features (see :data:`ops.services.FEATURES`; ``()``: every service), named
``<name>:<service>``.

The runner (:mod:`ops.doctor.runner`) runs them in dependency order, in parallel where they are
independent, each bounded by its timeout, and skips a check whose dependency failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar, Protocol

from ops.errors import UsageError

if TYPE_CHECKING:
    from ops.doctor.context import DoctorContext
    from ops.profiles.loader import LoadedProfile

#: Groups in the order they are run and shown.
GROUPS = ("host", "docker", "network", "models", "gateway", "services", "chain", "offline")
DEFAULT_TIMEOUT = 15.0


class Status(StrEnum):
    """What a check found."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Repair:
    """A safe fix ``--fix`` may apply: what it does, and the call that does it.

    ``apply`` returns one line saying what was done, or raises an :class:`~ops.errors.OpsError`.
    """

    action: str
    apply: Callable[[], str] = field(compare=False)
    timeout: float = 300.0


@dataclass(frozen=True)
class Outcome:
    """What one run of a check returns; the runner adds name, group, timing."""

    status: Status
    detail: str
    fix: str | None = None
    repair: Repair | None = None


def ok(detail: str) -> Outcome:
    """All is well; ``detail`` says what was seen."""
    return Outcome(Status.OK, detail)


def warn(detail: str, fix: str, repair: Repair | None = None) -> Outcome:
    """Works, but something will bite: say what and how to fix it."""
    return Outcome(Status.WARN, detail, fix, repair)


def fail(detail: str, fix: str, repair: Repair | None = None) -> Outcome:
    """Broken: say what and how to fix it."""
    return Outcome(Status.FAIL, detail, fix, repair)


def skipped(detail: str) -> Outcome:
    """Not run; ``detail`` says what it depends on or why it does not apply."""
    return Outcome(Status.SKIPPED, detail)


class Skip(Exception):
    """Raised anywhere inside a check to skip it with a reason (e.g. Docker is not needed here)."""


def profile_of(ctx: DoctorContext) -> LoadedProfile:
    """The loaded profile, for a check that needs one; skips the check when the profile did not load.

    Such checks depend on ``host.profile``, which fails then, so the runner skips them before this.
    """
    if ctx.loaded is None:
        raise Skip("the profile did not load")
    return ctx.loaded


@dataclass(frozen=True)
class CheckResult:
    """One check's result, as shown in the table and in ``--json``."""

    name: str
    group: str
    status: Status
    detail: str
    fix: str | None
    depends_on: tuple[str, ...]
    seconds: float


@dataclass(frozen=True)
class FixResult:
    """One repair ``--fix`` tried."""

    check: str
    action: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class DoctorReport:
    """Every check of one ``ops doctor`` run (after the fixes, with ``--fix``)."""

    profile: str | None
    checks: tuple[CheckResult, ...]
    fixes: tuple[FixResult, ...] = ()

    @property
    def summary(self) -> dict[str, int]:
        """How many checks ended in each status."""
        counts = {s.value: 0 for s in Status}
        for result in self.checks:
            counts[result.status.value] += 1
        return counts

    @property
    def ok(self) -> bool:
        """True when no check failed (warnings do not fail the run)."""
        return all(r.status != Status.FAIL for r in self.checks)

    def result(self, name: str) -> CheckResult:
        """The result of the check called ``name``."""
        for r in self.checks:
            if r.name == name:
                return r
        raise KeyError(name)

    def to_json(self) -> dict:
        """The documented, stable ``--json`` shape."""
        return {
            "profile": self.profile,
            "summary": self.summary,
            "checks": [
                {
                    "name": r.name,
                    "group": r.group,
                    "status": r.status.value,
                    "detail": r.detail,
                    "fix": r.fix,
                    "depends_on": list(r.depends_on),
                    "seconds": round(r.seconds, 3),
                }
                for r in self.checks
            ],
            "fixes": [
                {"check": f.check, "action": f.action, "ok": f.ok, "detail": f.detail} for f in self.fixes
            ],
        }


class Check(Protocol):
    """One diagnosis. ``run`` never needs to catch errors: the runner turns them into ``fail``."""

    name: str
    group: str
    depends_on: tuple[str, ...]
    timeout: float

    def run(self, ctx: DoctorContext) -> Outcome:
        """Look once and say what was found."""


class BaseCheck:
    """Convenience base for built-in checks: class attributes, and per-service naming.

    A subclass sets ``name``, ``group``, ``depends_on`` and ``timeout``; with ``features`` set
    (features of service kinds, ``()`` for every service) it is made once per enabled service
    whose kind has them all, and ``{service}`` in ``depends_on`` becomes the service's name.
    """

    # Set by each subclass; an instance made per service renames itself ``<name>:<service>``.
    name: str
    group: str
    depends_on: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    features: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, service: str | None = None):
        self.service = service
        if service is not None:
            self.name = f"{type(self).name}:{service}"
            self.depends_on = tuple(d.format(service=service) for d in type(self).depends_on)

    @property
    def for_service(self) -> str:
        """The service a per-service check looks at; one made without a service cannot run."""
        if self.service is None:
            raise UsageError(
                f"check {self.name} looks at one service and was made without one",
                hint=f"set `features` on {type(self).__name__} so it is made once per service",
            )
        return self.service

    def run(self, ctx: DoctorContext) -> Outcome:  # pragma: no cover - every subclass overrides it
        """Look once and say what was found."""
        raise NotImplementedError


_REGISTRY: dict[str, type[BaseCheck]] = {}


def register(cls: type[BaseCheck]) -> type[BaseCheck]:
    """Register a check class under its name (a later registration replaces an earlier one)."""
    if cls.group not in GROUPS:
        raise ValueError(f"check {cls.name}: unknown group {cls.group!r} (groups: {', '.join(GROUPS)})")
    _REGISTRY[cls.name] = cls
    return cls


def names() -> list[str]:
    """Names of the registered checks, in run order."""
    return [cls.name for cls in _ordered()]


def get(name: str) -> type[BaseCheck]:
    """The check class called ``name``; an unknown name lists the valid ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown check {name!r}", hint=f"checks: {', '.join(names())}") from None


def _ordered() -> list[type[BaseCheck]]:
    # Stable: by group, then in registration order within the group.
    return sorted(_REGISTRY.values(), key=lambda cls: GROUPS.index(cls.group))


def checks(ctx: DoctorContext) -> list[Check]:
    """Instances of every registered check for ``ctx``: per-service classes once per matching service."""
    return list(_instances(ctx))


def _instances(ctx: DoctorContext) -> Iterator[Check]:
    from ops import services as kinds

    for cls in _ordered():
        if cls.features is None:
            yield cls()
            continue
        for service, kind in ctx.service_kinds().items():
            if all(kinds.has_feature(kind, feature) for feature in cls.features):
                yield cls(service)


# The built-in groups register themselves the way a plug-in would.
from ops.doctor import (  # noqa: E402, F401
    chain,
    engine,
    exposure,
    gateway,
    host,
    images,
    models,
    network,
    offline,
    reach,
    services,
)
