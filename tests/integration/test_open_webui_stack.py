"""The offline profile from nothing: the real Open WebUI, wired to the real gateway, with data that survives.

The first run on a machine builds Open WebUI from its recipe (no registry here): several minutes.
"""

from __future__ import annotations

import time

import httpx
import pytest

from ops import lifecycle, profiles
from ops.cli import main
from ops.plan import resolve
from ops.services import openwebui
from ops.stack import GATEWAY_KEY, service_key
from ops.state import StackState
from tests.integration.hosts import free_port, module_home

STACK = "owui"


home, ops_home = module_home("owui-home")


@pytest.fixture(scope="module")
def stack(home, tmp_path_factory, docker_client, base_image, smollm2):
    ui_port, gateway_port = free_port(), free_port()
    path = tmp_path_factory.mktemp("owui") / f"{STACK}.yaml"
    path.write_text(
        f"""\
name: {STACK}
models:
  smollm2: {{recipe: smollm2-135m-instruct, precision: int4}}
  smollm2-foundry: {{recipe: smollm2-135m-instruct, precision: int4, serve: foundry}}
  tiny-int4: {{path: bundled:tiny-int4}}
gateway: {{port: {gateway_port}, default_max_tokens: 24}}
services:
  open-webui:
    kind: open-webui
    ports: ["127.0.0.1:{ui_port}:8080"]
    volumes: ["data:/app/backend/data"]
    health: {{http: /health, body: "true", timeout: 600}}
volumes:
  data: {{}}
"""
    )
    loaded = profiles.load_path(path)
    lifecycle.down(
        resolve(loaded, ask_catalog=False), remove_volumes=True
    )  # from nothing, even after an interrupted run
    started = time.monotonic()
    try:
        report = lifecycle.up(resolve(loaded), say=print)
        print(f"ops up {STACK} from nothing: ready in {time.monotonic() - started:.1f} s")
        yield loaded, report, f"http://127.0.0.1:{ui_port}"
    finally:
        lifecycle.down(resolve(loaded, ask_catalog=False), remove_volumes=True)


def admin_token(loaded, url: str) -> str:
    state = StackState.for_stack(loaded.name)
    email = state.secrets.get(openwebui.ADMIN_EMAIL).reveal()
    return openwebui.sign_in(url, email, state.secrets.get(openwebui.ADMIN_PASSWORD))


def test_up_from_nothing_proves_the_chain(stack):
    loaded, report, url = stack
    assert report.chain["open-webui"].startswith("3 models listed; a chat answered")
    assert httpx.get(f"{url}/health").json() == {"status": True}


def test_after_the_first_up_its_container_holds_no_admin_password_and_a_key_that_only_infers(
    stack, docker_client
):
    """Docker users can read a container's environment: it must not hold the admin's password (only
    needed to create the admin on the first start) nor a key that can unload the stack's models."""
    loaded, _, url = stack
    secrets = StackState.for_stack(loaded.name).secrets
    container = docker_client.containers.get(f"ops-{STACK}-open-webui")
    env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    assert not {"WEBUI_ADMIN_EMAIL", "WEBUI_ADMIN_PASSWORD", "WEBUI_ADMIN_NAME"} & set(env)
    assert secrets.get(openwebui.ADMIN_PASSWORD).reveal() not in str(env)
    key = secrets.get(service_key("open-webui")).reveal()
    assert env["OPENAI_API_KEY"] == key != secrets.get(GATEWAY_KEY).reveal()
    gateway = resolve(loaded, ask_catalog=False).gateway.url.removesuffix("/v1")
    headers = {"authorization": f"Bearer {key}"}
    assert httpx.get(f"{gateway}/v1/models", headers=headers, timeout=10).status_code == 200
    refused = httpx.post(f"{gateway}/ops/models/tiny-int4/unload", headers=headers, timeout=30)
    assert refused.status_code == 403, refused.text
    # The admin signs in as before, and the next `ops up` leaves the container as it is.
    assert admin_token(loaded, url)
    again = lifecycle.up(resolve(loaded))
    assert {s.service: s.action for s in again.services} == {"open-webui": "keep"}


def test_open_webui_runs_as_its_own_user_without_capabilities(stack, docker_client):
    """Not root: its own user (10001), no capabilities, no new privileges; its data is that user's."""
    container = docker_client.containers.get(f"ops-{STACK}-open-webui")
    result = container.exec_run(
        ["sh", "-c", "id -u; stat -c %u /app/backend/data/webui.db; grep CapEff /proc/1/status"]
    )
    uid, owner, caps = result.output.decode().splitlines()
    assert (uid, owner) == ("10001", "10001")
    assert caps.split()[-1] == "0000000000000000"
    assert container.attrs["HostConfig"]["SecurityOpt"] == ["no-new-privileges:true"]


def test_chat_through_open_webui_answers_with_real_words_on_both_serving_paths(stack):
    """The real model through Open WebUI's own API: greedy, it names the capital of France, and the
    batching engine (smollm2) answers word for word what Foundry's web service (smollm2-foundry) does."""
    loaded, _, url = stack
    headers = {"authorization": f"Bearer {admin_token(loaded, url)}"}
    answers = {}
    for model in ("smollm2", "smollm2-foundry"):
        body = {
            "model": model,
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
            "stream": False,
            "temperature": 0,
            "max_tokens": 16,
        }
        reply = httpx.post(f"{url}/api/chat/completions", json=body, headers=headers, timeout=120).json()
        answers[model] = reply["choices"][0]["message"]["content"]
    assert "Paris" in answers["smollm2"]
    assert answers["smollm2"] == answers["smollm2-foundry"]


def test_chat_through_open_webui_answers_from_the_tiny_model(stack):
    loaded, _, url = stack
    headers = {"authorization": f"Bearer {admin_token(loaded, url)}"}
    models = {m["id"] for m in httpx.get(f"{url}/api/models", headers=headers, timeout=30).json()["data"]}
    assert {"smollm2", "tiny-int4"} <= models
    body = {
        "model": "tiny-int4",
        "messages": [{"role": "user", "content": "What is WebGPU?"}],
        "stream": False,
    }
    answer = httpx.post(f"{url}/api/chat/completions", json=body, headers=headers, timeout=60).json()
    assert answer["choices"][0]["message"]["content"].strip()


def test_auth_is_on_and_signup_closed(stack):
    _, _, url = stack
    assert httpx.get(f"{url}/api/models", timeout=10).status_code in (401, 403)
    response = httpx.post(
        f"{url}/api/v1/auths/signup",
        json={"name": "x", "email": "x@example.com", "password": "pw-123456"},
        timeout=10,
    )
    assert response.status_code in (401, 403), response.text


def test_ops_owned_settings_win_over_saved_ones(stack, capsys):
    loaded, _, url = stack
    headers = {"authorization": f"Bearer {admin_token(loaded, url)}"}
    config = httpx.get(f"{url}/openai/config", headers=headers, timeout=10).json()
    config["OPENAI_API_BASE_URLS"] = ["http://wrong.invalid/v1"]
    saved = httpx.post(f"{url}/openai/config/update", json=config, headers=headers, timeout=10)
    assert saved.status_code == 200, saved.text
    assert main(["restart", str(loaded.path), "open-webui"]) == 0
    from ops.probes import HttpProbe, wait_for

    wait_for(HttpProbe(f"{url}/health", body="true"), 300)
    headers = {"authorization": f"Bearer {admin_token(loaded, url)}"}
    after = httpx.get(f"{url}/openai/config", headers=headers, timeout=10).json()
    key = StackState.for_stack(loaded.name).secrets.get(GATEWAY_KEY)
    assert after["OPENAI_API_BASE_URLS"] == [f"http://host.docker.internal:{loaded.profile.gateway.port}/v1"]
    assert key.reveal() not in capsys.readouterr().out


def test_runs_in_a_row_reuse_the_admin_session_instead_of_signing_in_again(stack):
    """Open WebUI allows 15 sign-ins per account in 3 minutes: ops up, doctor and smoke share one session."""
    loaded, _, url = stack
    secrets = StackState.for_stack(loaded.name).secrets
    email, password = secrets.get(openwebui.ADMIN_EMAIL).reveal(), secrets.get(openwebui.ADMIN_PASSWORD)
    tokens = {openwebui.session(url, secrets, email, password) for _ in range(20)}
    assert len(tokens) == 1
    assert tokens == {secrets.get(openwebui.SESSION_TOKEN).reveal()}
    me = httpx.get(f"{url}/api/v1/auths/", headers={"authorization": f"Bearer {tokens.pop()}"}, timeout=10)
    assert me.status_code == 200 and me.json()["email"] == email


def test_a_stored_session_open_webui_rejects_is_replaced_by_a_sign_in(stack):
    loaded, _, url = stack
    secrets = StackState.for_stack(loaded.name).secrets
    email, password = secrets.get(openwebui.ADMIN_EMAIL).reveal(), secrets.get(openwebui.ADMIN_PASSWORD)
    secrets.set(openwebui.SESSION_TOKEN, "not-a-session")
    token = openwebui.session(url, secrets, email, password)
    assert token != "not-a-session"
    assert secrets.get(openwebui.SESSION_TOKEN).reveal() == token
    me = httpx.get(f"{url}/api/v1/auths/", headers={"authorization": f"Bearer {token}"}, timeout=10)
    assert me.status_code == 200


def test_data_and_secrets_survive_down_and_up(stack, docker_client):
    loaded, _, url = stack
    headers = {"authorization": f"Bearer {admin_token(loaded, url)}"}
    chat = {"chat": {"title": "kept across restarts", "messages": []}}
    created = httpx.post(f"{url}/api/v1/chats/new", json=chat, headers=headers, timeout=10)
    assert created.status_code == 200, created.text
    chat_id = created.json()["id"]
    secrets_before = StackState.for_stack(loaded.name).secrets.path.read_text()
    lifecycle.down(resolve(loaded, ask_catalog=False))
    report = lifecycle.up(resolve(loaded))
    assert report.services[0].action == "create"
    assert StackState.for_stack(loaded.name).secrets.path.read_text() == secrets_before
    headers = {"authorization": f"Bearer {admin_token(loaded, url)}"}
    got = httpx.get(f"{url}/api/v1/chats/{chat_id}", headers=headers, timeout=10)
    assert got.status_code == 200 and got.json()["title"] == "kept across restarts"


def test_healing_after_open_webui_and_host_are_killed(stack, docker_client):
    import psutil

    from ops.host.info import HostInfo

    loaded, _, url = stack
    state = StackState.for_stack(loaded.name)
    container = docker_client.containers.get(f"ops-{STACK}-open-webui")
    container.kill()
    psutil.Process(HostInfo.read(state.pid_file).pid).kill()
    report = lifecycle.up(resolve(loaded))
    assert {s.service: s.action for s in report.services} == {"open-webui": "start"}
    assert not report.host_reused
    assert report.chain["open-webui"].startswith("3 models listed")
