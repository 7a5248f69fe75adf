"""The CLI's contract: exit codes, key output lines, settings."""

from __future__ import annotations

import json

import pytest

import ops
from ops import settings
from ops.cli import main
from ops.models import catalog

# .invalid never resolves (RFC 2606): the catalog is unreachable at once, on any machine.
OFFLINE_CATALOG = "https://catalog.invalid/asset-gallery/v1.0/models"


def run(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"ops {ops.__version__}"


def test_unknown_command_is_usage_error(capsys):
    code, _, err = run(capsys, "frobnicate")
    assert code == 2 and "No such command" in err


def test_profiles_lists_shipped(capsys):
    code, out, _ = run(capsys, "profiles", "--json")
    assert code == 0
    names = [p["name"] for p in json.loads(out)]
    assert {"workshop", "offline"} <= set(names)


def test_profile_path_setting_comes_first(tmp_path, capsys, monkeypatch):
    (tmp_path / "workshop.yaml").write_text("name: mine\nmodels: {m: {catalog: phi-4-mini}}\n")
    monkeypatch.setenv(settings.OPS_PROFILE_PATH, str(tmp_path))
    code, out, _ = run(capsys, "validate", "--json", "workshop")
    assert code == 0 and json.loads(out)["stack"] == "mine"


def test_shipped_profiles_are_valid(capsys):
    for name in ("workshop", "offline", "classroom"):
        code, out, err = run(capsys, "validate", "--json", name)
        assert code == 0, err
        data = json.loads(out)
        assert data["stack"] == name


def test_classroom_profile_has_thirty_participants_and_is_not_exposed(capsys):
    code, out, _ = run(capsys, "validate", "--json", "classroom")
    data = json.loads(out)
    assert code == 0 and data["participants"] == [f"p{i:02d}" for i in range(1, 31)]
    assert data["expose"] is None  # the room is opened on purpose only: the address is the user's
    code, out, _ = run(capsys, "validate", "classroom")
    assert "30 participants (p01..p30), 20,000 tokens an hour each" in out
    assert "not exposed (127.0.0.1 only)" in out


def test_offline_profile_serves_a_real_model_in_two_precisions(capsys):
    _, out, _ = run(capsys, "validate", "--json", "offline")
    models = json.loads(out)["models"]
    recipes = {(m["recipe"], m["precision"]) for m in models.values() if m["recipe"]}
    assert recipes == {("smollm2-135m-instruct", "int4"), ("smollm2-135m-instruct", "fp32")}
    assert all(m["catalog"] is None and m["url"] is None for m in models.values())


def test_plan_skips_unreachable_catalog_model_and_says_why(monkeypatch):
    from ops import plan

    monkeypatch.setenv(settings.OPS_CATALOG_URL, OFFLINE_CATALOG)
    plans = {p.alias: p for p in plan.load("workshop").models}
    assert plans["phi-4-mini"].use is False
    assert plans["phi-4-mini"].reason.startswith("skipped: the Foundry catalog cannot be reached")
    assert plans["smollm2"].use is True and plans["smollm2"].source == "recipe"


def test_required_catalog_model_offline_is_model_error(tmp_path, capsys, monkeypatch):
    path = tmp_path / "p.yaml"
    path.write_text("models: {big: {catalog: phi-4-mini}}\n")
    monkeypatch.setenv(settings.OPS_CATALOG_URL, OFFLINE_CATALOG)
    code, _, err = run(capsys, "up", str(path))
    assert code == 4
    assert "model 'big' needs the Foundry catalog" in err and "optional: true" in err


def test_catalog_check_is_bounded(silent_server):
    # A server that never answers is the case that hangs the SDK's own catalog calls.
    result = catalog.check_catalog(0.5, f"https://{silent_server}/models")
    assert not result.reachable
    assert result.reason == "no answer from the Foundry catalog within 0.5 s (offline?)"


@pytest.mark.parametrize("raw,expected", [("", 3.0), ("7", 7.0), ("junk", 3.0)])
def test_catalog_timeout_setting(raw, expected):
    assert settings.Settings.from_env({"OPS_CATALOG_TIMEOUT": raw}).catalog_timeout == expected


def test_home_follows_xdg(tmp_path):
    s = settings.Settings.from_env({"XDG_STATE_HOME": str(tmp_path)})
    assert s.home == tmp_path / "ops"
    assert settings.Settings.from_env({"OPS_HOME": "/x/y"}).home.as_posix() == "/x/y"


def test_output_prints_fingerprints_and_brackets_verbatim(capsys):
    """Rich would turn ``:AB:`` into an emoji and ``[bold]`` into a style: a CA fingerprint, a key or a
    log line must print exactly as it is, on stdout and on stderr."""
    from ops.cli import output

    fingerprint = "B3:AB:0C:OK:ID:1E:[bold]x[/bold]"
    output.line(f"  CA SHA-256 {fingerprint}")
    output.note(fingerprint)
    captured = capsys.readouterr()
    assert captured.out == f"  CA SHA-256 {fingerprint}\n"
    assert captured.err == f"{fingerprint}\n"


def test_json_output_renders_a_plans_pydantic_specs(capsys):
    """``ops up --json`` reports the models' plans, whose ``spec`` is the profile's pydantic model: it
    must render as JSON, not fail with 'not JSON serializable'."""
    from ops.cli import output
    from ops.plan import ModelPlan
    from ops.profiles.schema import ModelSpec

    spec = ModelSpec.model_validate({"path": "bundled:tiny-fp32"})
    output.emit_json({"models": [ModelPlan("tiny", "local", "/x", True, "ok", spec=spec)]})
    rendered = json.loads(capsys.readouterr().out)
    assert rendered["models"][0]["alias"] == "tiny"
    assert rendered["models"][0]["spec"]["path"] == "bundled:tiny-fp32"
