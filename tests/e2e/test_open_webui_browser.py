"""Open WebUI in a real browser: sign in with the generated admin, send a message, see the answer.

The stack is brought up by ``ops up`` (the library call) on the bundled tiny model; the test
drives Debian's Chromium through Playwright and saves a screenshot to artifacts/.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest

from ops import lifecycle, profiles
from ops.services import openwebui
from ops.state import StackState
from tests.integration.hosts import free_port, module_home

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
STACK = "owbrowser"


home, ops_home = module_home("owb-home")


@pytest.fixture(scope="module")
def open_webui(home, tmp_path_factory, docker_client):
    port = free_port()
    path = tmp_path_factory.mktemp("owb") / f"{STACK}.yaml"
    path.write_text(
        f"""\
name: {STACK}
models:
  tiny: {{path: bundled:tiny-fp32}}
gateway: {{port: {free_port()}, default_max_tokens: 24}}
services:
  open-webui:
    kind: open-webui
    ports: ["127.0.0.1:{port}:8080"]
    volumes: ["data:/app/backend/data"]
    health: {{http: /health, body: "true", timeout: 600}}
volumes:
  data: {{}}
"""
    )
    loaded = profiles.load_path(path)
    lifecycle.down(loaded, remove_volumes=True)
    try:
        lifecycle.up(loaded)
        state = StackState.for_stack(STACK)
        email = state.secrets.get(openwebui.ADMIN_EMAIL).reveal()
        password = state.secrets.get(openwebui.ADMIN_PASSWORD).reveal()
        yield f"http://127.0.0.1:{port}", email, password
    finally:
        lifecycle.down(loaded, remove_volumes=True)


def test_sign_in_send_a_message_see_the_answer(open_webui, browser_plain):
    url, email, password = open_webui
    context = browser_plain.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        page.goto(f"{url}/auth", wait_until="load")
        # The sign-in form is rendered by the front end once its config call answers: under load
        # that takes a while after the page itself has loaded.
        page.wait_for_selector("#email", timeout=120_000)
        page.fill("#email", email)
        page.fill("#password", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}/", timeout=60_000)
        # A fresh admin is greeted by release notes once; close them when they show.
        with contextlib.suppress(Exception):
            page.get_by_text("Okay, Let's Go!").click(timeout=5_000)
        page.click("#chat-input")
        page.keyboard.type("What is a small language model?")
        page.keyboard.press("Enter")
        answer = page.locator(".chat-assistant #response-content-container").first
        answer.wait_for(timeout=60_000)
        deadline = time.monotonic() + 60
        text = ""
        while time.monotonic() < deadline and len(text.split()) < 3:
            text = answer.inner_text().strip()
            page.wait_for_timeout(250)
        assert "model's maximum context length" not in text, text
        assert len(text.split()) >= 3, f"no answer from the model: {text!r}"
    finally:
        # Saved pass or fail: a person can see what the browser saw.
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "open-webui-chat.png"))
        context.close()
