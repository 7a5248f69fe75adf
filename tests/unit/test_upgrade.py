"""``ops upgrade``'s decisions, made before anything changes: every bad input is one line with a hint."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from ops import plan as stack_plan
from ops.cli import main
from ops.errors import UsageError
from ops.profiles import load_path
from ops.upgrade.decide import decide, pending

PROFILE = """\
name: upg
models:
  tiny: {path: bundled:tiny-fp32}
services:
  ui:
    kind: open-webui
    version: "0.12.3"
  spare:
    kind: open-webui
    enabled: false
    ports: ["127.0.0.1:3999:8080"]
  plain:
    kind: container
    image: nginx:1.25
    ports: ["127.0.0.1:8999:80"]
  rag:
    kind: chainlit-rag
"""


@pytest.fixture
def plan(tmp_path, monkeypatch) -> stack_plan.StackPlan:
    monkeypatch.setenv("OPS_HOME", str(tmp_path / "home"))
    path = tmp_path / "upg.yaml"
    path.write_text(PROFILE)
    return stack_plan.resolve(load_path(path), ask_catalog=False)


def _container(status: str = "running", version: str | None = "0.12.3"):
    return SimpleNamespace(status=status, labels={"ops.version": version} if version else {})


def test_decides_an_upgrade_of_a_running_service(plan):
    decision = decide(plan, "ui", "0.12.4", {"ui": _container()})
    assert (decision.current, decision.target) == ("0.12.3", "0.12.4")
    assert decision.new.build_tag == "ops-open-webui:0.12.4"
    assert decision.new.build_args == ()  # 0.12.4 is the recipe's default
    assert [m.source for m in decision.volumes] == ["ops-upg-ui-data"]


def test_a_container_without_a_version_label_runs_the_plans_version(plan):
    assert decide(plan, "ui", "0.12.4", {"ui": _container(version=None)}).current == "0.12.3"


@pytest.mark.parametrize(
    ("service", "target", "running", "message", "hint"),
    [
        ("nope", "1", {}, "no service 'nope' in profile upg", "services: ui, spare, plain, rag"),
        ("spare", "0.12.4", {}, "service spare is disabled", "enabled: true"),
        ("rag", "2", {}, "service rag has no version to upgrade", "image's tag"),
        ("plain", "1.27", {}, "keeps no data in a volume", "services.plain.version: 1.27"),
        ("ui", "not a version", {}, "--to 'not a version' is not a valid version", "a Docker tag"),
        ("ui", "0.12.4", {}, "stack upg is not up: the container of ui is missing", "ops up upg"),
        ("ui", "0.12.4", {"ui": _container("exited")}, "the container of ui is exited", "ops up upg"),
        ("ui", "0.12.3", {"ui": _container()}, "already runs version 0.12.3", "nothing to do"),
    ],
)
def test_bad_requests_are_refused_in_one_line_with_a_hint(plan, service, target, running, message, hint):
    with pytest.raises(UsageError) as caught:
        decide(plan, service, target, running)
    assert message in caught.value.message and "\n" not in caught.value.message
    assert caught.value.hint and hint in caught.value.hint


def test_ops_up_upgrades_only_running_services_with_data_whose_label_differs(plan):
    running = {
        "ui": _container(version="0.12.2"),
        "plain": SimpleNamespace(status="running", labels={"ops.version": "1.24"}),  # no data volume
    }
    [decision] = pending(plan, running)
    assert (decision.name, decision.current, decision.target) == ("ui", "0.12.2", "0.12.3")
    assert pending(plan, {"ui": _container()}) == []  # same version
    assert pending(plan, {"ui": _container(version=None)}) == []  # an older ops made it: no label
    assert pending(plan, {"ui": _container("exited", "0.12.2")}) == []  # not running: up replaces it


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["upgrade", "PROFILE", "nope", "--to", "1"], 2, "no service 'nope'"),
        (["upgrade", "PROFILE", "ui", "--to", "a b"], 2, "is not a valid version"),
        (["upgrade", "PROFILE", "rag", "--to", "2"], 2, "has no version"),
        (["upgrade", "no-such-profile", "ui", "--to", "2"], 2, "no profile named"),
    ],
)
def test_cli_bad_input_exits_non_zero_with_one_line_and_no_traceback(
    tmp_path, monkeypatch, capsys, args, code, text
):
    monkeypatch.setenv("OPS_HOME", str(tmp_path / "home"))
    path = tmp_path / "upg.yaml"
    path.write_text(PROFILE)
    assert main([str(path) if a == "PROFILE" else a for a in args]) == code
    err = capsys.readouterr().err
    assert err.startswith("error: ") and text in err.splitlines()[0]
    assert "hint:" in err and "Traceback" not in err
    assert not (tmp_path / "home" / "stacks" / "upg" / "versions.json").exists()


def test_cli_prints_each_steps_time_and_where_the_version_is_kept(tmp_path, monkeypatch, capsys):
    from ops import upgrade
    from ops.upgrade.switch import UpgradeReport

    monkeypatch.setenv("OPS_HOME", str(tmp_path / "home"))
    path = tmp_path / "upg.yaml"
    path.write_text(PROFILE)
    seen = {}

    def fake(plan, service, to, say, backup):
        seen.update(service=service, to=to, backup=backup)
        say("trial: 1.0 s")
        steps = {"backup": 0.2, "image": 0.0, "copy": 0.1, "trial": 1.0, "switch": 2.0}
        return UpgradeReport(
            "upg", service, "0.12.3", to, "ops-open-webui:0.12.4", "/b.tgz", steps, 3.3, [], "/v.json"
        )

    monkeypatch.setattr(upgrade, "upgrade", fake)
    assert main(["upgrade", str(path), "ui", "--to", "0.12.4", "--no-backup"]) == 0
    out, err = capsys.readouterr()
    assert seen == {"service": "ui", "to": "0.12.4", "backup": False}
    assert "ui: 0.12.3 -> 0.12.4 in 3 s (ops-open-webui:0.12.4)" in out
    assert "backup 0.2 s, image 0.0 s, copy 0.1 s, trial 1.0 s, switch 2.0 s" in out
    assert "version kept in /v.json" in out and "trial: 1.0 s" in err  # progress on stderr
    assert main(["upgrade", str(path), "ui", "--to", "0.12.4", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["steps"]["switch"] == 2.0 and report["kept_in"] == "/v.json"


def test_scratch_removal_takes_only_the_runs_own_and_spares_the_data_kept_after_a_failed_put_back():
    from ops.upgrade import scratch

    class Thing:
        def __init__(self, name, run):
            self.name, self.labels, self.removed = name, {"ops.upgrade": run}, False

        def remove(self, force=False):
            self.removed = True

    class Listing:
        def __init__(self, things):
            self.things = things

        def list(self, all=False, filters=None):
            key, _, value = filters["label"].partition("=")
            return [t for t in self.things if t.labels.get(key) == value]

    trial, keep, other = Thing("t", "run1"), Thing("k", "run1"), Thing("o", "run2")
    client = SimpleNamespace(containers=Listing([]), volumes=Listing([trial, keep, other]))
    assert scratch.remove(client, "run1", {"k"}) == ["t"]
    assert (trial.removed, keep.removed, other.removed) == (True, False, False)
