"""``ops doctor`` on the command line with fake checks: exit codes, the table, the stable JSON schema."""

from __future__ import annotations

import json

import pytest

from ops.cli import main
from ops.doctor import Repair, fail, ok, skipped, warn

from .test_doctor_runner import Fake

CHECK_KEYS = ["name", "group", "status", "detail", "fix", "depends_on", "seconds"]


@pytest.fixture
def fake_checks(monkeypatch):
    """Replace the registered checks with the list the test sets."""
    chosen: list = []
    monkeypatch.setattr("ops.doctor.runner.checks", lambda ctx: list(chosen))
    return chosen


@pytest.fixture
def profile(tmp_path):
    path = tmp_path / "docunit.yaml"
    path.write_text("models: {tiny: {path: bundled:tiny-fp32}}\n")
    return str(path)


def run(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_all_ok_exits_0(fake_checks, profile, capsys):
    fake_checks += [Fake("host.a"), Fake("docker.b", group="docker")]
    code, out, _ = run(capsys, "doctor", profile)
    assert code == 0
    assert "docunit: 2 ok" in out
    assert "host\n" in out and "docker\n" in out, "results are grouped under their group"


def test_warnings_exit_0_and_show_their_fix(fake_checks, profile, capsys):
    fake_checks += [Fake("host.a", lambda: warn("disk nearly full", "free some space"))]
    code, out, _ = run(capsys, "doctor", profile)
    assert code == 0
    assert "warn" in out and "disk nearly full" in out and "fix: free some space" in out


def test_a_failure_exits_1_with_the_fix_and_the_skipped_dependent(fake_checks, profile, capsys):
    fake_checks += [
        Fake("gateway.host", lambda: fail("the model host died", "`ops up docunit`"), group="gateway"),
        Fake("gateway.health", depends_on=("gateway.host",), group="gateway"),
    ]
    code, out, _ = run(capsys, "doctor", profile)
    assert code == 1
    assert "the model host died" in out and "fix: `ops up docunit`" in out
    assert "depends on gateway.host, which failed" in out
    assert "docunit: 1 fail, 1 skipped" in out


def test_json_schema_is_stable(fake_checks, profile, capsys):
    fake_checks += [
        Fake("host.a"),
        Fake("host.b", lambda: warn("w", "fix b")),
        Fake(
            "host.c", lambda: fail("x", "fix c", Repair("mend c", lambda: "mended")), depends_on=("host.a",)
        ),
        Fake("host.d", lambda: skipped("not here")),
    ]
    code, out, _ = run(capsys, "doctor", "--json", profile)
    assert code == 1
    data = json.loads(out)
    assert list(data) == ["profile", "summary", "checks", "fixes"]
    assert data["profile"] == "docunit"
    assert data["summary"] == {"ok": 1, "warn": 1, "fail": 1, "skipped": 1}
    assert data["fixes"] == []
    for check in data["checks"]:
        assert list(check) == CHECK_KEYS
        assert isinstance(check["seconds"], float) and isinstance(check["depends_on"], list)
    c = data["checks"][2]
    assert (c["name"], c["group"], c["status"], c["detail"], c["fix"], c["depends_on"]) == (
        "host.c",
        "host",
        "fail",
        "x",
        "fix c",
        ["host.a"],
    )
    assert data["checks"][0]["fix"] is None


def test_fix_applies_repairs_and_reports_them(fake_checks, profile, capsys):
    state = {"broken": True}

    def mend():
        state["broken"] = False
        return "mended"

    fake_checks.append(
        Fake("host.c", lambda: fail("x", "fix c", Repair("mend c", mend)) if state["broken"] else ok("fine"))
    )
    code, out, _ = run(capsys, "doctor", "--json", "--fix", profile)
    assert code == 0
    data = json.loads(out)
    assert data["fixes"] == [{"check": "host.c", "action": "mend c", "ok": True, "detail": "mended"}]
    assert data["checks"][0]["status"] == "ok"


def test_no_profile_named_uses_workshop_when_no_stack_runs(fake_checks, capsys):
    fake_checks.append(Fake("host.a"))
    code, out, err = run(capsys, "doctor")
    assert code == 0 and "profile: workshop" in err and "workshop: 1 ok" in out


def test_an_unknown_profile_is_a_failed_check_not_a_crash(capsys, monkeypatch):
    from ops.doctor import checks as registered

    # Only checks that touch neither Docker nor the network: this is the unit tier.
    wanted = {"host.profile", "host.python", "gateway.host", "gateway.health"}
    monkeypatch.setattr(
        "ops.doctor.runner.checks", lambda ctx: [c for c in registered(ctx) if c.name in wanted]
    )
    code, out, _ = run(capsys, "doctor", "--json", "no-such-profile")
    assert code == 1
    data = json.loads(out)
    profile_check = next(c for c in data["checks"] if c["name"] == "host.profile")
    assert profile_check["status"] == "fail"
    assert "no profile named 'no-such-profile'" in profile_check["detail"]
    assert "ops validate no-such-profile" in profile_check["fix"]
    gateway = next(c for c in data["checks"] if c["name"] == "gateway.host")
    assert gateway["status"] == "skipped" and gateway["detail"] == "depends on host.profile, which failed"


def test_no_profile_named_uses_the_one_running_stack(fake_checks, profile, capsys):
    import os
    import time

    from ops.host.info import HostInfo
    from ops.state import StackState

    state = StackState.for_stack("docunit").ensure()
    import psutil

    # This test's own process stands in for a live host: its pid, start time and argv are checked.
    me = psutil.Process()
    HostInfo(
        os.getpid(), 1, ("127.0.0.1",), profile, time.time(), "", me.create_time(), tuple(me.cmdline())
    ).write(state.pid_file)
    fake_checks.append(Fake("host.a"))
    code, out, err = run(capsys, "doctor")
    assert code == 0 and f"profile: {profile}" in err and "docunit: 1 ok" in out
