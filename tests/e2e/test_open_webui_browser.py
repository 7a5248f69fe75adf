"""Open WebUI in a real browser: sign in with the generated admin, send a message, see the answer.

The stack is brought up by ``ops up`` (the library call) on the bundled tiny model; the test
drives Debian's Chromium through Playwright and saves a screenshot to artifacts/. The gateway has
one virtual model, ``counted``, routed to the tiny model: its router counts the chat requests sent
to it, which is how a test sees what reached the gateway for one message.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from ops.bench.openwebui_wait import GatewayCount, send, sign_in
from ops.services import openwebui
from ops.stack import GATEWAY_KEY
from ops.state import StackState
from tests.integration.hosts import free_port, module_home
from tests.integration.openwebui_stack import open_webui_profile, stack_up

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
STACK = "owbrowser"
COUNTED = "counted"


home, ops_home = module_home("owb-home")


@pytest.fixture(scope="module")
def open_webui(home, tmp_path_factory, docker_client):
    port, gateway_port = free_port(), free_port()
    path = open_webui_profile(
        tmp_path_factory.mktemp("owb"),
        STACK,
        port,
        f"{{port: {gateway_port}, default_max_tokens: 24,"
        f" routing: {{models: {{{COUNTED}: {{default: [tiny], timeout: 120}}}}}}}}",
    )
    with stack_up(path, fresh=True):
        state = StackState.for_stack(STACK)
        yield SimpleNamespace(
            url=f"http://127.0.0.1:{port}",
            email=state.secrets.get(openwebui.ADMIN_EMAIL).reveal(),
            password=state.secrets.get(openwebui.ADMIN_PASSWORD).reveal(),
            gateway_url=f"http://127.0.0.1:{gateway_port}/v1",
            key=state.secrets.get(GATEWAY_KEY).reveal(),
        )


def test_sign_in_send_a_message_see_the_answer(open_webui, browser_plain):
    url, email, password = open_webui.url, open_webui.email, open_webui.password
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


def test_one_message_is_one_chat_completion_at_the_gateway(open_webui, browser_plain):
    """Open WebUI's follow-up, title and tag generations are off by default: after an answer in a new
    chat (the case where all three would run), nothing but the answer itself reached the gateway."""
    count = GatewayCount(open_webui.gateway_url, open_webui.key, COUNTED)
    context = browser_plain.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        sign_in(page, open_webui.url, open_webui.email, open_webui.password)
        before = count.now()
        wait = send(page, open_webui.url, COUNTED, "What is a small language model?")
        # The background generations start as soon as the answer's stream ends; give them 5 s.
        requests = count.settled(quiet=5, limit=60) - before
        assert wait.chars > 0
        assert requests == 1, f"one message caused {requests} chat requests at the gateway"
    finally:
        context.close()
