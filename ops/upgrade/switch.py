"""The guarded switch: the new version tried on a copy of the data, then swapped in, or nothing changed.

Steps, each timed: ``backup`` (the stack's volumes into its state folder), ``image`` (the new
version's image, built or reused), ``copy`` (the service's volumes into scratch volumes, the old
container paused meanwhile), ``trial`` (the new version on the copies, on a free loopback port: its
migrations run there, then its health and its kind's chain are checked), ``switch`` (the old
container stopped, its data copied aside, the new version started on the real volumes and checked
again; on failure the data is copied back and the old container started again). Scratch volumes and
containers are removed however it ends.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker.errors

from ops import reconcile, volumes
from ops.errors import OpsError
from ops.images.service import ensure_service_image
from ops.services import StackContext
from ops.services.spec import ContainerSpec
from ops.upgrade import scratch
from ops.upgrade.decide import Decision, UpgradeRefused

Say = Callable[[str], None]


@dataclass
class UpgradeReport:
    """What an upgrade did: versions, image, backup, and how long each step took."""

    stack: str
    service: str
    from_version: str
    to_version: str
    image: str = ""
    backup: str | None = None
    #: step -> seconds, in the order they ran.
    steps: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    #: Scratch volumes and containers removed at the end.
    removed: list[str] = field(default_factory=list)
    #: Where the chosen version is kept (``ops upgrade --to``), or None (the profile says it).
    kept_in: str | None = None


@contextlib.contextmanager
def timed(report: UpgradeReport, name: str, say: Say) -> Iterator[None]:
    """Run one step, print and record its time."""
    say(f"{name}: ...")
    started = time.monotonic()
    try:
        yield
    finally:
        report.steps[name] = round(time.monotonic() - started, 1)
        say(f"{name}: {report.steps[name]:.1f} s")


def run(
    client,
    decision: Decision,
    ctx: StackContext,
    host_alias: str,
    say: Say,
    backup: Callable[[], Path | None],
) -> UpgradeReport:
    """Try ``decision`` and switch; raises :class:`UpgradeRefused` (the old version runs on its data)."""
    started = time.monotonic()
    name, new = decision.name, decision.new
    report = UpgradeReport(decision.stack, name, decision.current, decision.target)
    run_id = scratch.run_id()
    spare: set[str] = set()  # the data as it was, when putting it back failed: never removed then
    old = reconcile.containers(client, decision.stack)[name]
    try:
        with timed(report, "backup", say):
            found = backup()
            report.backup = str(found) if found else None
        with timed(report, "image", say):
            try:
                tag, image_id, _source = ensure_service_image(client, new, say)
            except OpsError as exc:
                raise _refused(decision, f"its image cannot be made: {exc.message}", exc.hint) from None
            report.image = tag
        extra = volumes.declared(client, new, image_id)
        spec = new.container(ctx, tag, image_id, host_alias, extra)
        data = [m.source for m in spec.mounts if m.kind == "volume" and not m.read_only]
        helper = scratch.copy_image(client, old.image.id)
        with timed(report, "copy", say):
            copies: dict[str, str] = {}
            with scratch.paused(old, say):
                for i, volume in enumerate(data):
                    copy = scratch.scratch_name(decision.stack, name, run_id, "trial", i)
                    copies[volume] = scratch.copy_to_new(client, volume, copy, run_id)
        with timed(report, "trial", say):
            _trial(client, decision, ctx, scratch.trial_spec(spec, copies, scratch.free_port()), run_id, say)
        with timed(report, "switch", say):
            _switch(client, decision, ctx, spec, old, data, run_id, helper, say, spare)
    finally:
        report.removed = scratch.remove(client, run_id, spare)
        if report.removed:
            say(f"removed the upgrade's scratch volumes and containers: {', '.join(report.removed)}")
    report.seconds = round(time.monotonic() - started, 1)
    return report


def _trial(client, decision: Decision, ctx: StackContext, spec: ContainerSpec, run_id: str, say: Say) -> None:
    """The new version on the copies: started, healthy, and its chain answering; else refused."""
    volumes.hand_over(client, spec, set(m.source for m in spec.mounts if m.kind == "volume"), say)
    container = scratch.start_trial(client, spec, run_id)
    say(f"{decision.name} {decision.target}: trying it on a copy of its data at {spec.url}")
    try:
        reconcile.wait_ready(spec, container, say)
        chain = decision.new.kind.chain
        if chain is not None:
            chain(ctx.for_service(decision.name), spec.url, spec.timeout)
            say(f"{decision.name} {decision.target}: its chain works on the copy")
    except Exception as exc:
        raise _refused(decision, f"it failed on a copy of the data: {_reason(exc)}", None, exc) from None


def _switch(
    client,
    decision: Decision,
    ctx: StackContext,
    spec: ContainerSpec,
    old,
    data: list[str],
    run_id: str,
    helper: str,
    say: Say,
    spare: set[str],
) -> None:
    """Stop the old container, keep its data aside, start the new version; put everything back on failure."""
    name, real_name = decision.name, old.name
    kept: dict[str, str] = {}
    touched = renamed = False
    new = None
    try:
        old.stop(timeout=30)
        say(f"{name}: {decision.current} stopped")
        for i, volume in enumerate(data):
            keep = scratch.scratch_name(decision.stack, name, run_id, "keep", i)
            kept[volume] = scratch.copy_to_new(client, volume, keep, run_id)
        old.rename(f"{real_name}-before-upgrade-{run_id}")
        renamed = touched = True
        volumes.hand_over(client, spec, set(data), say)
        new = client.containers.create(**spec.create_kwargs())
        new.start()
        reconcile.wait_ready(spec, new, say)
        if decision.new.kind.chain is not None:
            decision.new.kind.chain(ctx.for_service(name), spec.url, spec.timeout)
            say(f"{name} {decision.target}: its chain works")
    except BaseException as exc:  # Ctrl-C too: the old version is put back before it ends
        say(f"{name}: the switch failed ({_reason(exc)}); putting {decision.current} back")
        try:
            _put_back(client, decision, old, real_name, new, kept if touched else {}, renamed, helper, say)
        except Exception as failed:
            spare.update(kept.values())
            raise UpgradeRefused(
                f"upgrade of {name} to {decision.target} failed after the switch ({_reason(exc)}) and "
                f"putting {decision.current} back failed too: {_reason(failed)}",
                hint=f"the data as it was before the switch is kept in {', '.join(kept.values()) or 'no copy'}; "
                f"copy it back and run `ops up {decision.stack}`",
            ) from None
        if not isinstance(exc, Exception):
            raise
        raise _refused(decision, f"it failed after the switch: {_reason(exc)}", None, exc) from None
    with contextlib.suppress(docker.errors.APIError):
        old.remove(force=True)
    say(f"{name}: now runs {decision.target}")


def _put_back(client, decision, old, real_name, new, kept, renamed, helper, say) -> None:
    """The old container on the data as it was before the switch."""
    if new is not None:
        with contextlib.suppress(docker.errors.APIError):
            new.remove(force=True)
    for volume, keep in kept.items():
        scratch.copy_volume(client, keep, volume, helper)
    if renamed:
        old.rename(real_name)
    old.start()
    reconcile.wait_ready(decision.service.container(None), old, say)
    say(f"{decision.name}: {decision.current} runs again on its data as it was")


def _reason(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, OpsError) else f"{type(exc).__name__}: {exc}"
    lines = text.strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _refused(
    decision: Decision, why: str, hint: str | None, cause: BaseException | None = None
) -> UpgradeRefused:
    error = UpgradeRefused(
        f"upgrade of {decision.name} to {decision.target} refused: {why}; {decision.current} still runs on its data",
        hint=hint
        or f"see the log lines above; `ops upgrade {decision.stack} {decision.name} --to VERSION` tries another",
    )
    evidence = getattr(cause, "evidence", None)
    if evidence:
        error.evidence = list(evidence)  # type: ignore[attr-defined]
    return error
