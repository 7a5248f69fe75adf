"""``ops open`` and ``ops credentials``: URLs from the plan, sign-ins from each kind, exact exit codes."""

from __future__ import annotations

import json
import webbrowser
from pathlib import Path

import pytest

from ops.cli import main
from ops.errors import ExitCode
from ops.services import chainlit, openwebui
from ops.stack import GATEWAY_KEY
from ops.state import StackState

LAN = "192.0.2.2"


def run(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def profile(tmp_path) -> Path:
    path = tmp_path / "room.yaml"
    path.write_text(
        "models:\n  tiny: {path: bundled:tiny-fp32}\n"
        "gateway: {port: 8123}\n"
        "services:\n"
        "  ui: {kind: open-webui}\n"
        "  rag: {kind: chainlit-rag}\n"
        "  demo: {kind: webgpu-demo}\n"
    )
    return path


@pytest.fixture
def exposed(profile) -> Path:
    profile.write_text(profile.read_text() + f"expose: {{address: {LAN}}}\n")
    return profile


def test_open_print_gives_the_first_web_app_on_this_machine(capsys, profile):
    code, out, _ = run(capsys, "open", str(profile), "--print")
    assert code == 0 and out == "http://127.0.0.1:3000\n"


def test_open_print_gives_the_https_lan_url_when_exposed(capsys, exposed):
    assert run(capsys, "open", str(exposed), "--print")[1] == f"https://{LAN}:3000\n"
    assert run(capsys, "open", str(exposed), "rag", "--print")[1] == f"https://{LAN}:8501\n"
    assert run(capsys, "open", str(exposed), "gateway", "--print")[1] == f"https://{LAN}:8123/v1\n"


def test_open_an_unknown_service_is_a_usage_error_listing_the_services(capsys, profile):
    code, out, err = run(capsys, "open", str(profile), "nope", "--print")
    assert code == ExitCode.USAGE and out == ""
    assert "no service 'nope'" in err and "ui, rag, demo" in err


def test_open_without_a_display_prints_the_url_instead(capsys, profile, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    code, out, err = run(capsys, "open", str(profile))
    assert code == 0 and out == "http://127.0.0.1:3000\n" and "no DISPLAY" in err
    assert opened == []


def test_open_with_a_display_opens_the_browser(capsys, profile, monkeypatch):
    monkeypatch.setenv("DISPLAY", ":0")
    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    code, out, err = run(capsys, "open", str(profile), "demo")
    assert code == 0 and opened == ["http://127.0.0.1:8502"] and out == ""
    assert "opened http://127.0.0.1:8502" in err


def test_credentials_before_the_first_up_says_to_run_up(capsys, profile):
    code, out, err = run(capsys, "credentials", str(profile))
    assert code == ExitCode.FAILURE and out == ""
    assert "stack room has no credentials yet" in err and "ops up room" in err


def _seed(stack: str) -> dict[str, str]:
    secrets = StackState.for_stack(stack).ensure().secrets
    secrets.set(GATEWAY_KEY, "k" * 40)
    return {
        "email": secrets.set(openwebui.ADMIN_EMAIL, f"admin@{stack}.ops.local").reveal(),
        "owui": secrets.set(openwebui.ADMIN_PASSWORD, "owui-password-123").reveal(),
        "rag": secrets.set(chainlit.PASSWORD, "rag-password-456").reveal(),
        "file": str(secrets.path),
    }


def test_credentials_show_each_sign_in_and_where_the_gateway_key_is(capsys, exposed):
    seeded = _seed("room")
    code, out, err = run(capsys, "credentials", str(exposed))
    assert code == 0
    assert "these are secrets" in err and "these are secrets" not in out
    lines = out.splitlines()
    assert lines[0] == "ui"
    assert f"  url        https://{LAN}:3000" in lines
    assert "  local_url  http://127.0.0.1:3000" in lines
    assert f"  e-mail     {seeded['email']}" in lines
    assert f"  password   {seeded['owui']}" in lines
    assert (
        "rag" in lines
        and f"  user       {chainlit.USERNAME}" in lines
        and f"  password   {seeded['rag']}" in lines
    )
    assert "demo" not in lines  # the WebGPU demo has no sign-in
    assert f"  base URL   https://{LAN}:8123/v1" in lines
    assert any(line.startswith(f"  key        stored in {seeded['file']}") for line in lines)
    assert "k" * 40 not in out  # the key itself stays with `ops endpoint --show-key`


def test_credentials_json(capsys, profile):
    seeded = _seed("room")
    code, out, _ = run(capsys, "credentials", str(profile), "--json")
    assert code == 0
    data = json.loads(out)
    ui = next(s for s in data["services"] if s["service"] == "ui")
    assert ui == {
        "service": "ui",
        "url": "http://127.0.0.1:3000",
        "local_url": "http://127.0.0.1:3000",
        "e-mail": seeded["email"],
        "password": seeded["owui"],
    }
    assert [s["service"] for s in data["services"]] == ["ui", "rag"]
    assert data["gateway"] == {
        "base_url": "http://127.0.0.1:8123/v1",
        "local_base_url": "http://127.0.0.1:8123/v1",
        "key_file": seeded["file"],
        "key_name": GATEWAY_KEY,
    }
