"""The doctor runner with fake checks: dependency order and skipping, timeouts, errors, repairs."""

from __future__ import annotations

import subprocess
import sys
import threading
from dataclasses import dataclass, field

import pytest

from ops.doctor import Outcome, Repair, Skip, Status, fail, ok, skipped, warn
from ops.doctor.context import DoctorContext
from ops.doctor.runner import apply_repairs, diagnose, run_checks
from ops.errors import OpsError


@dataclass
class Fake:
    """A check whose ``run`` is a plain function of nothing."""

    name: str
    body: object = field(default=lambda: ok("fine"))
    depends_on: tuple[str, ...] = ()
    group: str = "host"
    timeout: float = 5.0

    def run(self, ctx) -> Outcome:
        return self.body()


def raise_(exc: BaseException):
    def body():
        raise exc

    return body


@pytest.fixture
def ctx():
    return DoctorContext(None)


def statuses(run) -> dict[str, tuple[str, str]]:
    return {r.name: (r.status.value, r.detail) for r in run.results}


def test_a_failed_dependency_skips_its_dependents_and_says_which(ctx):
    run = run_checks(
        [
            Fake("a", lambda: fail("broken", "mend it")),
            Fake("b", depends_on=("a",)),
            Fake("c", depends_on=("b",)),
            Fake("d"),
        ],
        ctx,
    )
    assert statuses(run) == {
        "a": ("fail", "broken"),
        "b": ("skipped", "depends on a, which failed"),
        "c": ("skipped", "depends on b, which was skipped"),
        "d": ("ok", "fine"),
    }
    assert [r.name for r in run.results] == ["a", "b", "c", "d"], "results keep the checks' order"
    assert run.results[1].depends_on == ("a",)


def test_a_warning_does_not_skip_dependents(ctx):
    run = run_checks([Fake("a", lambda: warn("meh", "tweak")), Fake("b", depends_on=("a",))], ctx)
    assert statuses(run)["b"] == ("ok", "fine")


def test_unknown_dependency_and_cycles_are_skipped_not_hung(ctx):
    run = run_checks(
        [
            Fake("lonely", depends_on=("nowhere",)),
            Fake("x", depends_on=("y",)),
            Fake("y", depends_on=("x",)),
        ],
        ctx,
    )
    result = statuses(run)
    assert result["lonely"] == ("skipped", "depends on nowhere, which did not run")
    assert result["x"][0] == "skipped" and "cycle" in result["x"][1]
    assert result["y"][0] == "skipped" and "cycle" in result["y"][1]


def test_dependents_start_only_after_their_dependency_finished(ctx):
    seen = []

    def first():
        seen.append("first")
        return ok("first done")

    def second():
        return ok("saw first") if seen == ["first"] else fail("ran too early", "")

    run = run_checks([Fake("second", second, depends_on=("first",)), Fake("first", first)], ctx)
    assert statuses(run)["second"] == ("ok", "saw first")


def test_independent_checks_run_in_parallel(ctx):
    # Each waits for the other at a barrier: they pass only if both run at the same time.
    barrier = threading.Barrier(2, timeout=10)

    def meet():
        barrier.wait()
        return ok("met")

    run = run_checks([Fake("left", meet), Fake("right", meet)], ctx)
    assert statuses(run) == {"left": ("ok", "met"), "right": ("ok", "met")}


def test_a_check_that_hangs_fails_with_its_timeout_and_the_rest_go_on(ctx):
    never = threading.Event()

    def hang():
        never.wait()
        return ok("unreachable")

    run = run_checks(
        [Fake("stuck", hang, timeout=0.2), Fake("after", depends_on=("stuck",)), Fake("other")], ctx
    )
    result = {r.name: r for r in run.results}
    assert result["stuck"].status == Status.FAIL
    assert result["stuck"].detail == "timed out after 0.2 s"
    assert result["stuck"].fix and "ops doctor" in result["stuck"].fix
    assert result["after"].detail == "depends on stuck, which failed"
    assert result["other"].status == Status.OK
    never.set()


def test_errors_inside_checks_become_results(ctx):
    run = run_checks(
        [
            Fake("ops-error", raise_(OpsError("the thing is off", hint="turn it on"))),
            Fake("bug", raise_(ValueError("bad value"))),
            Fake("skip", raise_(Skip("not needed here"))),
        ],
        ctx,
    )
    result = {r.name: r for r in run.results}
    assert (result["ops-error"].status, result["ops-error"].detail, result["ops-error"].fix) == (
        Status.FAIL,
        "the thing is off",
        "turn it on",
    )
    assert result["bug"].status == Status.FAIL
    assert result["bug"].detail == "the check itself broke: ValueError: bad value"
    assert (result["skip"].status, result["skip"].detail) == (Status.SKIPPED, "not needed here")


def test_a_process_with_a_hung_check_still_exits():
    # A ThreadPoolExecutor would join the stuck thread at interpreter exit and hang here.
    code = (
        "import threading\n"
        "from ops.doctor import ok\n"
        "from ops.doctor.context import DoctorContext\n"
        "from ops.doctor.runner import run_checks\n"
        "class Stuck:\n"
        "    name, group, depends_on, timeout = 'stuck', 'host', (), 0.2\n"
        "    def run(self, ctx):\n"
        "        threading.Event().wait()\n"
        "        return ok('never')\n"
        "run = run_checks([Stuck()], DoctorContext(None))\n"
        "print(run.results[0].status.value, run.results[0].detail)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "fail timed out after 0.2 s"


def test_repairs_are_offered_only_for_failures_and_warnings(ctx):
    repair = Repair("mend", lambda: "mended")
    run = run_checks(
        [
            Fake("broken", lambda: fail("broken", "mend it", repair)),
            Fake("fine", lambda: Outcome(Status.OK, "fine", None, repair)),
        ],
        ctx,
    )
    assert list(run.repairs) == ["broken"]
    fixes = apply_repairs(run)
    assert [(f.check, f.action, f.ok, f.detail) for f in fixes] == [("broken", "mend", True, "mended")]


def test_a_failing_or_hanging_repair_is_reported(ctx):
    never = threading.Event()

    def hang():
        never.wait()
        return "never"

    run = run_checks(
        [
            Fake(
                "a",
                lambda: fail("a broken", "x", Repair("mend a", raise_(OpsError("no luck", hint="try b")))),
            ),
            Fake("b", lambda: fail("b broken", "y", Repair("mend b", hang, timeout=0.2))),
        ],
        ctx,
    )
    fixes = {f.check: f for f in apply_repairs(run)}
    assert (fixes["a"].ok, fixes["a"].detail) == (False, "no luck (try b)")
    assert (fixes["b"].ok, fixes["b"].detail) == (False, "timed out after 0.2 s")
    never.set()


def test_diagnose_with_fix_repairs_then_checks_again():
    state = {"broken": True}

    def mend() -> str:
        state["broken"] = False
        return "mended"

    def look():
        if state["broken"]:
            return fail("broken", "`ops doctor --fix` mends it", Repair("mend the thing", mend))
        return ok("fine")

    report = diagnose(None, fix=True, select=lambda ctx: [Fake("thing", look), Fake("other")])
    assert [(f.check, f.ok, f.detail) for f in report.fixes] == [("thing", True, "mended")]
    assert report.result("thing").status == Status.OK and report.ok

    state["broken"] = True
    report = diagnose(None, fix=False, select=lambda ctx: [Fake("thing", look)])
    assert report.fixes == () and not report.ok and report.result("thing").detail == "broken"


def test_report_summary_counts_every_status():
    report = diagnose(
        None,
        select=lambda ctx: [
            Fake("a"),
            Fake("b", lambda: warn("w", "f")),
            Fake("c", lambda: fail("x", "f")),
            Fake("d", lambda: skipped("not here")),
        ],
    )
    assert report.summary == {"ok": 1, "warn": 1, "fail": 1, "skipped": 1}
    assert not report.ok
