"""Thirty participants on a real stack: Open WebUI accounts made by `ops up`, each signs in and chats;
one removed is refused by Open WebUI, by the Chainlit app and by the gateway.

The stack (SmolLM2 from its recipe, the real Open WebUI and the Chainlit app) has a name of its
own and lives in a home of its own; everything it made is removed at the end.
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import time

import httpx
import pytest
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

from ops import lifecycle, profiles
from ops.cli import main
from ops.plan import resolve
from ops.services import chainlit
from ops.stack import participant_email
from ops.state import StackState
from tests.integration.hosts import free_port, module_home

STACK = "classroom-it"
COUNT = 30

home, ops_home = module_home("participants-home")


@pytest.fixture(scope="module")
def stack(home, tmp_path_factory, docker_client, base_image, smollm2):
    ui_port, rag_port, gateway_port = free_port(), free_port(), free_port()
    path = tmp_path_factory.mktemp("participants") / f"{STACK}.yaml"
    path.write_text(
        f"""\
name: {STACK}
models:
  smollm2: {{recipe: smollm2-135m-instruct, precision: int4}}
gateway: {{port: {gateway_port}, bind: [127.0.0.1, stack-gateway], default_max_tokens: 12}}
participants: {{count: {COUNT}}}
services:
  open-webui:
    kind: open-webui
    ports: ["127.0.0.1:{ui_port}:8080"]
    volumes: ["owui:/app/backend/data"]
    health: {{http: /health, body: "true", timeout: 600}}
  rag:
    kind: chainlit-rag
    image_policy: build
    ports: ["127.0.0.1:{rag_port}:8000"]
    volumes: ["docs:/data/docs", "index:/data/index"]
    environment: {{RAG_MAX_TOKENS: 12}}
    health: {{http: /health, timeout: 300}}
volumes:
  owui: {{}}
  docs: {{}}
  index: {{}}
"""
    )
    loaded = profiles.load_path(path)
    lifecycle.down(resolve(loaded, ask_catalog=False), remove_volumes=True)  # even after an interrupted run
    said: list[str] = []

    def say(line: str) -> None:
        said.append(line)
        print(line)

    started = time.monotonic()
    try:
        report = lifecycle.up(resolve(loaded), say=say)
        print(f"ops up {STACK} with {COUNT} participants from nothing: {time.monotonic() - started:.1f} s")
        urls = {"ui": f"http://127.0.0.1:{ui_port}", "rag": f"http://127.0.0.1:{rag_port}"}
        urls["gateway"] = f"http://127.0.0.1:{gateway_port}/v1"
        yield loaded, report, urls, said
    finally:
        lifecycle.down(resolve(loaded, ask_catalog=False), remove_volumes=True)


def secret(name: str) -> str:
    value = StackState.for_stack(STACK).secrets.get(name)
    assert value is not None, name
    return value.reveal()


def owui_sign_in(url: str, name: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/auths/signin",
        json={"email": participant_email(STACK, name), "password": password},
        timeout=60,
    )


def chat(url: str, name: str) -> str:
    signed = owui_sign_in(url, name, secret(f"participant-password:{name}"))
    assert signed.status_code == 200, signed.text
    assert signed.json()["role"] == "user"
    body = {"model": "smollm2", "messages": [{"role": "user", "content": "Say hello."}], "stream": False}
    answer = httpx.post(
        f"{url}/api/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {signed.json()['token']}"},
        timeout=180,
    )
    assert answer.status_code == 200, answer.text[:300]
    return answer.json()["choices"][0]["message"]["content"]


def test_up_makes_every_participants_account(stack):
    _, _, _, said = stack
    line = next(s for s in said if "participants' accounts" in s)
    print(f"accounts: {line}")
    assert re.search(
        rf"open-webui: {COUNT} participants' accounts \({COUNT} made, 0 deleted\) in [\d.]+ s", line
    )


def test_each_participant_signs_in_to_open_webui_and_chats(stack):
    _, _, urls, _ = stack
    names = [f"p{i:02d}" for i in range(1, COUNT + 1)]
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = dict(zip(names, pool.map(lambda n: chat(urls["ui"], n), names), strict=True))
    print(f"{COUNT} sign-ins and chats through Open WebUI: {time.monotonic() - started:.1f} s")
    empty = [n for n, text in answers.items() if not text.strip()]
    assert not empty, f"no answer for {empty}"


def test_a_participant_signs_in_to_the_rag_app_and_uses_their_own_key(stack):
    _, _, urls, _ = stack
    login = httpx.post(
        f"{urls['rag']}/login",
        data={"username": "p02", "password": secret("participant-password:p02")},
        timeout=60,
    )
    assert login.status_code == 200 and login.cookies, login.text[:200]
    models = httpx.get(
        f"{urls['gateway']}/models",
        headers={"authorization": f"Bearer {secret('participant-key:p02')}"},
        timeout=30,
    )
    assert models.status_code == 200 and "smollm2" in models.text


def usage_by_participant(loaded, capsys) -> dict[str, int]:
    capsys.readouterr()
    assert main(["usage", str(loaded.path), "--by", "participant", "--json"]) == 0
    return {row["name"]: row["requests"] for row in json.loads(capsys.readouterr().out)["callers"]}


def test_chats_count_as_the_participants_through_both_apps(stack, capsys):
    """Open WebUI forwards who asks; the Chainlit app names its participant (X-Ops-User): the gateway
    counts each chat as that participant's, not as the app's."""
    loaded, _, urls, _ = stack

    @retry(
        retry=retry_if_exception_type(AssertionError),
        stop=stop_after_delay(20),
        wait=wait_fixed(0.5),
        reraise=True,
    )
    def counted(check) -> dict[str, int]:
        rows = usage_by_participant(loaded, capsys)
        assert check(rows), rows
        return rows

    # The 30 chats of the test before, each through Open WebUI with its forwarded user.
    before = counted(lambda rows: all(rows.get(f"participant:p{i:02d}", 0) >= 1 for i in range(1, COUNT + 1)))
    cookies = chainlit.sign_in(
        urls["rag"], "p02", StackState.for_stack(STACK).secrets.get("participant-password:p02")
    )
    with chainlit.ChatClient(urls["rag"], cookies, profile="smollm2", timeout=120) as chat:
        answer = chat.ask("What is in the documents?")
    assert answer.tokens, answer
    counted(lambda rows: rows.get("participant:p02", 0) > before["participant:p02"])


def test_list_shows_them_without_secrets(stack, capsys):
    loaded, _, _, _ = stack
    capsys.readouterr()
    assert main(["participants", "list", str(loaded.path), "--json"]) == 0
    out = capsys.readouterr().out
    listed = json.loads(out)["participants"]
    assert len(listed) == COUNT
    assert all(p["accounts"] == {"open-webui": True} and p["key"] and p["password"] for p in listed)
    assert secret("participant-password:p03") not in out and secret("participant-key:p03") not in out


def test_a_removed_participant_is_refused_everywhere(stack, capsys):
    loaded, _, urls, _ = stack
    password, key = secret("participant-password:p01"), secret("participant-key:p01")
    signed = owui_sign_in(urls["ui"], "p01", password)
    assert signed.status_code == 200  # before
    session = {"authorization": f"Bearer {signed.json()['token']}"}
    assert main(["participants", "remove", str(loaded.path), "p01", "--yes"]) == 0
    assert owui_sign_in(urls["ui"], "p01", password).status_code in (400, 401, 403)
    # A session opened before is over too: its user is gone.
    assert httpx.get(f"{urls['ui']}/api/v1/auths/", headers=session, timeout=30).status_code in (401, 403)
    login = httpx.post(f"{urls['rag']}/login", data={"username": "p01", "password": password}, timeout=60)
    assert login.status_code == 401
    refused = httpx.get(f"{urls['gateway']}/models", headers={"authorization": f"Bearer {key}"}, timeout=30)
    assert refused.status_code == 401
    capsys.readouterr()
    assert main(["participants", "list", str(loaded.path), "--json"]) == 0
    names = [p["name"] for p in json.loads(capsys.readouterr().out)["participants"]]
    assert len(names) == COUNT - 1 and "p01" not in names


def test_reset_gives_a_new_password_everywhere_and_a_new_key(stack, capsys):
    loaded, _, urls, _ = stack
    old_password, old_key = secret("participant-password:p05"), secret("participant-key:p05")
    assert main(["participants", "reset", str(loaded.path), "p05", "--key"]) == 0
    assert "new password and gateway key" in capsys.readouterr().out
    password, key = secret("participant-password:p05"), secret("participant-key:p05")
    assert password != old_password and key != old_key
    assert owui_sign_in(urls["ui"], "p05", old_password).status_code in (400, 401, 403)
    assert owui_sign_in(urls["ui"], "p05", password).status_code == 200
    rag = [
        httpx.post(f"{urls['rag']}/login", data={"username": "p05", "password": p}, timeout=60).status_code
        for p in (old_password, password)
    ]
    assert rag == [401, 200]
    gateway = [
        httpx.get(
            f"{urls['gateway']}/models", headers={"authorization": f"Bearer {k}"}, timeout=30
        ).status_code
        for k in (old_key, key)
    ]
    assert gateway == [401, 200]


def test_up_again_keeps_the_removed_one_out_and_makes_nothing(stack):
    loaded, _, urls, _ = stack
    said: list[str] = []
    started = time.monotonic()
    lifecycle.up(resolve(loaded), say=said.append)
    print(f"ops up again: {time.monotonic() - started:.1f} s; " + next(s for s in said if "accounts" in s))
    assert any(f"{COUNT - 1} participants' accounts (0 made, 0 deleted)" in s for s in said), said
    assert owui_sign_in(urls["ui"], "p01", "anything").status_code in (400, 401, 403)
