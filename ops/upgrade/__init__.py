"""``ops upgrade``: a service's new version tried on a copy of its data first, then switched to, or not at all.

:func:`upgrade` is ``ops upgrade [PROFILE] SERVICE --to VERSION``; :func:`guard_versions` is the same
guarded path for ``ops up`` when the profile's version of a service with data changed. The steps are
in :mod:`ops.upgrade.switch`, the refusals made before anything changes in :mod:`ops.upgrade.decide`.

Where the chosen version is kept: ``--to`` does not edit the profile (shipped profiles are not the
user's to rewrite, and a YAML rewrite loses comments); it records the version in the stack's state
(:func:`ops.versions.save_override`), which resolving the plan applies while the profile still
says the version it was chosen over. Changing the profile's version later wins again.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

from ops import reconcile, versions
from ops.errors import OpsError, UsageError
from ops.host import process
from ops.locks import file_lock
from ops.network import host_reach
from ops.plan import StackPlan
from ops.services import StackContext
from ops.settings import Settings
from ops.stack import GATEWAY_KEY
from ops.state import StackState
from ops.upgrade import scratch
from ops.upgrade.decide import Decision, UpgradeRefused, check_request, decide, pending
from ops.upgrade.switch import UpgradeReport, run

__all__ = ["UpgradeRefused", "UpgradeReport", "guard_versions", "upgrade"]

Say = Callable[[str], None]
#: The lock ``ops up`` and ``ops down`` hold (``ops.lifecycle.stack_lock``): an upgrade holds it too.
LOCK_FILE = "up.lock"
#: Seconds ``ops up`` waits for its model host before trying a new version's chain.
HOST_WAIT_S = 900.0


def upgrade(
    plan: StackPlan,
    service: str,
    to: str,
    settings: Settings | None = None,
    say: Say = lambda _: None,
    backup: bool = True,
) -> UpgradeReport:
    """Upgrade ``service`` of the running stack to version ``to``, guarded; keep the choice in state.

    Raises :class:`~ops.errors.UsageError` before anything changes for bad input (see
    :func:`ops.upgrade.decide.decide`), :class:`UpgradeRefused` when the new version failed (the old
    one runs on its data; the reason is in the message).
    """
    from ops.docker_engine import connect

    check_request(plan, service, to)  # before Docker is asked anything
    settings = settings or Settings.from_env()
    state = StackState.for_stack(plan.name, settings)
    client = connect(work_timeout=600.0)  # a volume copy answers when it is done
    decision = decide(plan, service, to, reconcile.containers(client, plan.name))
    if not process.status(state, timeout=2).running:
        raise UsageError(
            f"stack {plan.name} is not up: its model host is not running (the new version's chain needs it)",
            hint=f"run `ops up {plan.name}` first",
        )
    # `ops backup` holds the stack's lock itself: the backup comes before this upgrade takes it.
    started = time.monotonic()
    taken = _backup(plan, state, decision, say, backup, locked=False, settings=settings)
    took = round(time.monotonic() - started, 1)
    with file_lock(state.root / LOCK_FILE):
        decision = decide(plan, service, to, reconcile.containers(client, plan.name))  # still so?
        ctx = _context(plan, state)
        alias = host_reach(plan.gateway.bind, plan.name, client).alias
        report = run(client, decision, ctx, alias, say, lambda: taken)
        report.steps["backup"], report.seconds = took, round(report.seconds + took, 1)
        where = versions.save_override(
            state.root / versions.OVERRIDES_FILE, service, to, decision.service.profile_version
        )
        report.kept_in = str(where) if where else None
    return report


def guard_versions(
    client, plan: StackPlan, state: StackState, ctx: StackContext, host_alias: str, say: Say
) -> list[UpgradeReport]:
    """For ``ops up`` (under its lock): each running service with data whose profile version changed
    goes through the guarded path before reconcile; a refusal stops ``up`` with the old version running."""
    _forget_stale(plan, state.root / versions.OVERRIDES_FILE)
    left = scratch.interrupted(client, plan.name)
    if left:
        say(
            f"warning: an interrupted upgrade left {', '.join(left)}; a `keep` volume holds the data as it "
            "was before its switch (`docker volume rm` them once the stack works)"
        )
    reports = []
    for decision in pending(plan, reconcile.containers(client, plan.name)):
        say(
            f"{decision.name}: the profile says version {decision.target}, it runs {decision.current}: upgrading it the guarded way"
        )
        if decision.new.kind.chain is not None:
            _wait_for_host(state, say)
        try:
            report = run(client, decision, ctx, host_alias, say, _backup_of(plan, state, decision, say))
        except UpgradeRefused as exc:
            exc.hint = f"set services.{decision.name}.version back to {decision.current} in the profile, or fix the cause and run `ops up` again"
            raise
        versions.save_override(
            state.root / versions.OVERRIDES_FILE, decision.name, decision.target, decision.target
        )
        reports.append(report)
    return reports


def _forget_stale(plan: StackPlan, kept: Path) -> None:
    """Forget the versions ``ops upgrade`` chose that the plan no longer applies (the profile's version
    changed since, or the service is gone): a later profile change back must not revive them."""
    for name, (_version, over) in versions.read_overrides(kept).items():
        service = plan.services.get(name)
        if service is None or service.profile_version != over:
            versions.save_override(kept, name, over, over)


def _context(plan: StackPlan, state: StackState) -> StackContext:
    return plan.wiring(state.secrets, state.secrets.get_or_create(GATEWAY_KEY))


def _wait_for_host(state: StackState, say: Say) -> None:
    """Until the stack's model host answers healthy (``ops up`` starts it alongside the containers)."""
    deadline = time.monotonic() + HOST_WAIT_S
    said = False
    while time.monotonic() < deadline:
        host = process.status(state, timeout=2)
        if host.running and host.health and host.health.get("status") == "ok":
            return
        if not said:
            say("waiting for the model host before trying the new version's chain")
            said = True
        time.sleep(2)
    raise UpgradeRefused(
        "the model host did not become ready: the new version's chain cannot be checked",
        hint="see `ops logs` for the host; the old version still runs",
    )


def _backup_of(plan: StackPlan, state: StackState, decision: Decision, say: Say) -> Callable[[], Path | None]:
    return lambda: _backup(plan, state, decision, say, True, locked=True)


def _backup(
    plan: StackPlan,
    state: StackState,
    decision: Decision,
    say: Say,
    wanted: bool,
    locked: bool,
    settings: Settings | None = None,
) -> Path | None:
    """The stack's volumes (no secrets) into ``<state>/backups/``, before anything changes; its path.

    ``locked``: the caller (``ops up``) holds the stack's lock, which ``ops backup`` would wait for.
    """
    if not wanted:
        say("backup: skipped (--no-backup)")
        return None
    from ops.backup import take

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    output = (
        state.root / "backups" / f"{plan.name}-before-{decision.name}-{decision.target}-{stamp}.backup.tgz"
    )
    try:
        take(plan, output, secrets=False, passphrase=None, say=say, settings=settings, locked=locked)
    except OpsError as exc:
        raise UpgradeRefused(
            f"upgrade of {decision.name} to {decision.target} refused: the backup before it failed: {exc.message}",
            hint=exc.hint or "fix the backup first (`ops backup`), or pass --no-backup",
        ) from None
    say(f"backup: {output} (volumes, no secrets)")
    return output
