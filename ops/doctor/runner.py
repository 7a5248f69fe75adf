"""Run checks in dependency order, in parallel where independent, each bounded by its timeout.

Each check runs in its own daemon thread. Not a ``ThreadPoolExecutor``: the interpreter joins
an executor's threads at exit, so one check stuck in a native call or a silent socket would
hang ``ops doctor`` after it printed its report. A check that outlives its timeout is recorded
as ``fail`` ("timed out after N s") and its thread is abandoned.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ops.doctor import (
    Check,
    CheckResult,
    DoctorReport,
    FixResult,
    Outcome,
    Repair,
    Skip,
    Status,
    checks,
    fail,
    skipped,
)
from ops.doctor.context import DoctorContext
from ops.errors import OpsError
from ops.settings import Settings

log = logging.getLogger(__name__)

MAX_PARALLEL = 8
_BLOCKING = (Status.FAIL, Status.SKIPPED)


@dataclass(frozen=True)
class RunResult:
    """The results of one pass, and the repairs the checks offered."""

    results: tuple[CheckResult, ...]
    repairs: dict[str, Repair]


def run_checks(
    to_run: Sequence[Check],
    ctx: DoctorContext,
    max_parallel: int = MAX_PARALLEL,
    clock: Callable[[], float] = time.monotonic,
) -> RunResult:
    """Run ``to_run`` against ``ctx``: a check starts when its dependencies are done, and is
    skipped (naming the dependency) when one of them failed or was skipped."""
    by_name = {c.name: c for c in to_run}
    done: dict[str, tuple[Outcome, float]] = {}
    pending = list(to_run)
    running: dict[str, float] = {}  # name -> deadline
    finished: queue.Queue[tuple[str, Outcome, float]] = queue.Queue()

    def settle_blocked() -> bool:
        """Skip what can no longer run; start what can. True when something changed."""
        changed = False
        for check in list(pending):
            blocker = _blocker(check, by_name, done)
            if blocker is not None:
                pending.remove(check)
                done[check.name] = (skipped(blocker), 0.0)
                changed = True
            elif all(d in done for d in check.depends_on) and len(running) < max_parallel:
                pending.remove(check)
                running[check.name] = clock() + check.timeout
                _start(check, ctx, finished, clock)
                changed = True
        return changed

    while pending or running:
        while settle_blocked():
            pass
        if not running:
            # Nothing runs and nothing can start: the rest wait on each other.
            for check in pending:
                done[check.name] = (
                    skipped("depends on a cycle of checks: " + ", ".join(check.depends_on)),
                    0.0,
                )
            pending.clear()
            break
        wait = max(0.0, min(running.values()) - clock())
        try:
            name, outcome, seconds = finished.get(timeout=wait)
        except queue.Empty:
            now = clock()
            for name, deadline in list(running.items()):
                if deadline <= now:
                    del running[name]
                    limit = by_name[name].timeout
                    done[name] = (
                        fail(
                            f"timed out after {limit:g} s",
                            "something it asks did not answer; run `ops doctor` again, and look at the "
                            "checks of the same group for the cause",
                        ),
                        limit,
                    )
            continue
        if name in running:  # an abandoned check that finished late is ignored
            del running[name]
            done[name] = (outcome, seconds)

    results, repairs = [], {}
    for check in to_run:
        outcome, seconds = done[check.name]
        results.append(
            CheckResult(
                check.name,
                check.group,
                outcome.status,
                outcome.detail,
                outcome.fix,
                tuple(check.depends_on),
                seconds,
            )
        )
        if outcome.repair is not None and outcome.status in (Status.FAIL, Status.WARN):
            repairs[check.name] = outcome.repair
    return RunResult(tuple(results), repairs)


def _blocker(check: Check, by_name: dict[str, Check], done: dict[str, tuple[Outcome, float]]) -> str | None:
    """Why ``check`` must be skipped, or ``None`` while it may still run."""
    for dep in check.depends_on:
        if dep not in by_name:
            return f"depends on {dep}, which did not run"
        if dep in done and done[dep][0].status in _BLOCKING:
            verb = "failed" if done[dep][0].status == Status.FAIL else "was skipped"
            return f"depends on {dep}, which {verb}"
    return None


def _start(check: Check, ctx: DoctorContext, finished: queue.Queue, clock: Callable[[], float]) -> None:
    def work() -> None:
        started = clock()
        outcome = _run_one(check, ctx)
        finished.put((check.name, outcome, clock() - started))

    threading.Thread(target=work, name=f"doctor:{check.name}", daemon=True).start()


def _run_one(check: Check, ctx: DoctorContext) -> Outcome:
    """Run one check; an error becomes its ``fail`` (an ``OpsError`` keeps its hint as the fix)."""
    try:
        return check.run(ctx)
    except Skip as exc:
        return skipped(str(exc))
    except OpsError as exc:
        return fail(exc.message, exc.hint or "see the detail")
    except Exception as exc:  # a bug in one check must not stop the others
        log.debug("check %s raised", check.name, exc_info=True)
        text = str(exc).splitlines()[0] if str(exc) else ""
        return fail(
            f"the check itself broke: {type(exc).__name__}: {text}",
            "this is a bug in ops; please report it with this line",
        )


def apply_repairs(run: RunResult) -> list[FixResult]:
    """Apply the offered repairs one at a time, in check order, each bounded by its timeout."""
    fixes = []
    for result in run.results:
        repair = run.repairs.get(result.name)
        if repair is None:
            continue
        box: queue.Queue[tuple[bool, str]] = queue.Queue()

        def work(repair: Repair = repair, box: queue.Queue = box) -> None:
            try:
                box.put((True, repair.apply()))
            except OpsError as exc:
                box.put((False, exc.message + (f" ({exc.hint})" if exc.hint else "")))
            except Exception as exc:  # a failed repair is reported, the others still run
                box.put((False, f"{type(exc).__name__}: {exc}"))

        threading.Thread(target=work, name=f"repair:{result.name}", daemon=True).start()
        try:
            good, detail = box.get(timeout=repair.timeout)
        except queue.Empty:
            good, detail = False, f"timed out after {repair.timeout:g} s"
        fixes.append(FixResult(result.name, repair.action, good, detail))
    return fixes


def diagnose(
    profile_ref: str | None,
    fix: bool = False,
    settings: Settings | None = None,
    select: Callable[[DoctorContext], Sequence[Check]] | None = None,
) -> DoctorReport:
    """Run every check for ``profile_ref``; with ``fix``, apply the safe repairs and check again.

    ``select`` picks the checks for a context (default: every registered one).
    """
    settings = settings or Settings.from_env()
    select = select or checks
    ctx = DoctorContext(profile_ref, settings)
    try:
        first = run_checks(select(ctx), ctx)
        name = ctx.stack or profile_ref
        if not fix or not first.repairs:
            return DoctorReport(name, first.results)
        # Repairs use what the first pass found (its Docker client, its containers).
        fixes = apply_repairs(first)
    finally:
        ctx.close()
    # A fresh context: what the first pass remembered (host status, containers) is stale now.
    again = DoctorContext(profile_ref, settings)
    try:
        second = run_checks(select(again), again)
    finally:
        again.close()
    return DoctorReport(name, second.results, tuple(fixes))


def default_profile(settings: Settings | None = None) -> str:
    """The profile to diagnose when none is named: the one running stack's, else ``workshop``."""
    from ops.host.info import HostInfo
    from ops.host.process import is_host
    from ops.inventory import known_stacks
    from ops.state import StackState

    settings = settings or Settings.from_env()
    running = []
    for stack in known_stacks(settings):
        try:
            info = HostInfo.read(StackState.for_stack(stack, settings).pid_file)
        except OpsError:
            continue
        if info is not None and is_host(info):
            running.append(info.profile)
    return running[0] if len(running) == 1 else "workshop"
