"""``offline.ready``: could this machine bring the profile up with no network?

Every image present and current, every model here (:mod:`ops.bundle.readiness`). A machine that
is not ready gets a warning while the package index answers (it can still build or download) and
a failure when it does not (``ops up`` would stop half-way); the fix names the bundle to load or
the command that makes what is missing.
"""

from __future__ import annotations

from ops.doctor import BaseCheck, Outcome, fail, ok, profile_of, register, warn
from ops.doctor.context import DoctorContext

_SHOWN = 3


@register
class OfflineReadyCheck(BaseCheck):
    """Nothing of the profile would be built or downloaded by ``ops up``: it could come up offline."""

    name = "offline.ready"
    group = "offline"
    depends_on = ("host.profile",)
    timeout = 60.0

    def run(self, ctx: DoctorContext) -> Outcome:
        from ops.bundle.readiness import network_there, readiness
        from ops.doctor.engine import client_or_skip

        profile_of(ctx)
        plan = ctx.plan
        client = client_or_skip(ctx) if plan.enabled else None
        found = readiness(plan, client, ctx.settings, ctx.profile_arg)
        if found.ok:
            skipped = f"; {'; '.join(found.notes)}" if found.notes else ""
            return ok(f"ready offline: {len(found.ready)} images and models here{skipped}")
        gaps = found.gaps
        detail = f"not ready offline: {len(gaps)} missing: " + "; ".join(
            f"{g.what} ({g.reason})" for g in gaps[:_SHOWN]
        )
        if len(gaps) > _SHOWN:
            detail += f"; and {len(gaps) - _SHOWN} more"
        fixes = list(dict.fromkeys(g.fix for g in gaps))
        fix = " | ".join(fixes)
        if network_there():
            return warn(detail + " (the network is there: ops up would make them)", fix)
        return fail(detail + " (and the package index does not answer)", fix)
