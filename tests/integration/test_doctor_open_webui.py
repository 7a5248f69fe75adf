"""``ops doctor`` against the real Open WebUI: its stored connection and the models it lists.

The stack is the bundled tiny model and the real Open WebUI (built from its recipe the first time
on a machine: several minutes; cached after that).
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from ops.cli import main
from ops.services import openwebui
from ops.stack import service_key
from ops.state import StackState
from tests.integration.hosts import free_port, module_home
from tests.integration.openwebui_stack import SERVICE, open_webui_profile, stack_up

STACK = f"docowui-{uuid.uuid4().hex[:6]}"
MACHINE_CHECKS = {"host.gpu", "host.memory", "host.disk", "docker.disk", "docker.reclaimable"}


home, ops_home = module_home("docowui-home")


@pytest.fixture(scope="module")
def stack(home, tmp_path_factory, docker_client, open_webui_image):
    ui_port = free_port()
    path = open_webui_profile(
        tmp_path_factory.mktemp("docowui"),
        STACK,
        ui_port,
        f"{{port: {free_port()}, default_max_tokens: 24}}",
        image=open_webui_image.tag,
    )
    with stack_up(path) as (loaded, _):
        yield path, loaded, f"http://127.0.0.1:{ui_port}"


def admin(url: str) -> dict[str, str]:
    secrets = StackState.for_stack(STACK).secrets
    token = openwebui.sign_in(
        url, secrets.get(openwebui.ADMIN_EMAIL).reveal(), secrets.get(openwebui.ADMIN_PASSWORD)
    )
    return {"authorization": f"Bearer {token}"}


def store(url: str, change) -> None:
    """Change Open WebUI's stored OpenAI connection through its own API, as a user would in its settings."""
    headers = admin(url)
    config = httpx.get(f"{url}/openai/config", headers=headers, timeout=10).json()
    change(config)
    saved = httpx.post(f"{url}/openai/config/update", json=config, headers=headers, timeout=10)
    assert saved.status_code == 200, saved.text


def doctor(capsys, path, *flags: str) -> tuple[int, dict[str, dict], dict, str]:
    code = main(["doctor", "--json", *flags, str(path)])
    out = capsys.readouterr().out
    report = json.loads(out)
    return code, {c["name"]: c for c in report["checks"]}, report, out


def test_a_healthy_open_webui_stack_is_all_ok(stack, capsys):
    path, _, _ = stack
    code, checks, _, _ = doctor(capsys, path)
    problems = {
        n: f"{c['status']}: {c['detail']}"
        for n, c in checks.items()
        if c["status"] != "ok" and n not in MACHINE_CHECKS
    }
    assert problems == {}
    assert code == 0
    assert checks[f"chain.open-webui-models:{SERVICE}"]["detail"] == "lists tiny"
    assert checks[f"chain.open-webui-connection:{SERVICE}"]["detail"].endswith("with its gateway key")
    assert checks[f"services.container:{SERVICE}"]["status"] == "ok", (
        "its known offline errors are not counted"
    )


def test_a_wrong_key_stored_in_open_webui(stack, capsys):
    path, _, url = stack
    store(url, lambda config: config.update(OPENAI_API_KEYS=["sk-not-the-gateway-key"]))
    code, checks, _, out = doctor(capsys, path)
    assert code == 1
    connection = checks[f"chain.open-webui-connection:{SERVICE}"]
    assert (connection["status"], connection["detail"]) == (
        "fail",
        "the stored key differs from the gateway key",
    )
    assert f"`ops doctor {path} --fix` resets it to the gateway" in connection["fix"]
    assert f"`ops restart {path} {SERVICE}`" in connection["fix"]
    models = checks[f"chain.open-webui-models:{SERVICE}"]
    assert models["detail"] == f"depends on chain.open-webui-connection:{SERVICE}, which failed"
    key = StackState.for_stack(STACK).secrets.get(service_key(SERVICE)).reveal()
    assert key not in out

    code, checks, report, out = doctor(capsys, path, "--fix")
    assert [(f["check"], f["ok"]) for f in report["fixes"]] == [
        (f"chain.open-webui-connection:{SERVICE}", True)
    ]
    assert checks[f"chain.open-webui-connection:{SERVICE}"]["status"] == "ok"
    assert checks[f"chain.open-webui-models:{SERVICE}"]["detail"] == "lists tiny"
    assert code == 0 and key not in out
    stored = httpx.get(f"{url}/openai/config", headers=admin(url), timeout=10).json()
    assert stored["OPENAI_API_KEYS"] == [key]


def test_a_model_not_listed_in_open_webui(stack, capsys):
    path, _, url = stack
    # A model filter saved in the connection's settings hides the gateway's models.
    store(
        url, lambda config: config.update(OPENAI_API_CONFIGS={"0": {"enable": True, "model_ids": ["other"]}})
    )
    code, checks, _, _ = doctor(capsys, path)
    assert code == 1
    models = checks[f"chain.open-webui-models:{SERVICE}"]
    assert (models["status"], models["detail"]) == ("fail", "Open WebUI does not list tiny (it lists: other)")
    assert f"`ops doctor {path} --fix` resets its connection" in models["fix"]

    code, checks, report, _ = doctor(capsys, path, "--fix")
    assert [f["check"] for f in report["fixes"] if f["ok"]] == [f"chain.open-webui-models:{SERVICE}"]
    assert checks[f"chain.open-webui-models:{SERVICE}"]["detail"] == "lists tiny" and code == 0
