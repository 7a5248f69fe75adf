"""``ops model ...`` against a real running host and the real Foundry Local runtime."""

from __future__ import annotations

import json
import time

import pytest

from ops.cli import main

from .hosts import RunningHost

OFFLINE_CATALOG = "https://catalog.invalid/asset-gallery/v1.0/models"


@pytest.fixture
def host(tmp_path, ops_home, monkeypatch):
    monkeypatch.setenv("OPS_CATALOG_URL", OFFLINE_CATALOG)
    running = RunningHost(ops_home, tmp_path, "models", serve="foundry")  # Foundry's registrations are listed
    running.start()
    yield running
    running.stop()


def run(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_list_shows_profile_models_local_registrations_and_offline_catalog(host, capsys):
    code, out, err = run(capsys, "model", "list", "--json", str(host.path))
    assert code == 0, err
    listing = json.loads(out)
    profile = {r["name"]: r for r in listing["rows"] if r["where"] == "profile"}
    assert profile["tiny"]["state"] == "ready" and profile["tiny"]["id"].startswith("tiny-")
    local_ids = {r["id"] for r in listing["rows"] if r["where"] == "local"}
    assert profile["tiny"]["id"] in local_ids
    assert "cannot be reached" in listing["catalog_note"]


def test_list_does_not_hang_when_the_catalog_is_unreachable(host, capsys, monkeypatch, silent_server):
    # A server that accepts connections and never answers: the case where the SDK's own catalog
    # calls block for minutes (packets dropped, or a proxy that holds the line).
    monkeypatch.setenv("OPS_CATALOG_URL", f"https://{silent_server}/asset-gallery/v1.0/models")
    monkeypatch.setenv("OPS_CATALOG_TIMEOUT", "1")
    started = time.monotonic()
    code, out, err = run(capsys, "model", "list", str(host.path))
    elapsed = time.monotonic() - started
    assert code == 0 and "catalog: no answer from the Foundry catalog within 1 s" in err
    assert elapsed < 30, f"took {elapsed:.1f} s"  # bounded by the 1 s timeout, not the SDK's minutes


def test_unload_then_load(host, capsys):
    code, out, _ = run(capsys, "model", "unload", "tiny-int4", "--profile", str(host.path))
    assert code == 0 and "tiny-int4: unloaded" in out
    _, out, _ = run(capsys, "model", "list", "--json", "--no-catalog", str(host.path))
    states = {r["name"]: r["state"] for r in json.loads(out)["rows"] if r["where"] == "profile"}
    assert states == {"tiny": "ready", "tiny-int4": "unloaded"}
    code, out, _ = run(capsys, "model", "load", "tiny-int4", "--profile", str(host.path))
    assert code == 0 and "tiny-int4: ready" in out


def test_load_unknown_model_lists_known(host, capsys):
    code, _, err = run(capsys, "model", "load", "nope", "--profile", str(host.path))
    assert code == 4 and "known models: tiny, tiny-int4" in err


def test_pull_offline_fails_fast_with_a_hint(capsys, monkeypatch):
    monkeypatch.setenv("OPS_CATALOG_URL", OFFLINE_CATALOG)
    code, _, err = run(capsys, "model", "pull", "phi-4-mini")
    assert code == 4
    assert "cannot download 'phi-4-mini': the Foundry catalog cannot be reached" in err
    assert "hint: connect to the network" in err


def test_add_registers_idempotently(tmp_path, capsys):
    from ops import paths

    folder = paths.bundled_model("tiny-int4")
    code, first, _ = run(capsys, "model", "add", str(folder), "--alias", "mine")
    assert code == 0 and "mine: registered as mine-" in first
    code, second, _ = run(capsys, "model", "add", str(folder), "--alias", "mine")
    assert code == 0 and second.splitlines()[0] == first.splitlines()[0]


@pytest.mark.parametrize("make", ["missing", "file", "no-config"])
def test_add_bad_folder_is_usage_error(tmp_path, capsys, make):
    target = tmp_path / "m"
    if make == "file":
        target.write_text("x")
    elif make == "no-config":
        target.mkdir()
    code, _, err = run(capsys, "model", "add", str(target))
    assert code == 2 and "hint:" in err and "Traceback" not in err


def test_model_commands_without_a_running_host(tmp_path, capsys):
    path = tmp_path / "idle.yaml"
    path.write_text("models: {tiny: {path: bundled:tiny-fp32}}\n")
    code, _, err = run(capsys, "model", "unload", "tiny", "--profile", str(path))
    assert code == 4 and "not running" in err and "ops up idle" in err
