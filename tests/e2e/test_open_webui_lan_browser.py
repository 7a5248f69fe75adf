"""A participant in Open WebUI over the LAN address with TLS, in a real browser that trusts the stack's CA.

The stack (Open WebUI on the bundled tiny model) is brought up with ``expose:`` on this machine's
eth0 address, 192.0.2.2. Chromium trusts the stack's CA the way a participant's Linux laptop
would: the CA is imported into an NSS database (``certutil`` from Debian's libnss3-tools, which
``.ci/ensure-chromium`` installs) under a temporary HOME, which Chromium reads on Linux. Nothing
is skipped or ignored: the same browser without that database refuses the certificate.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from ops import participants, tls
from ops.bench.openwebui_wait import send, sign_in
from ops.runtime.browser import chromium_args
from ops.stack import participant_email
from ops.state import StackState
from tests.conftest import missing
from tests.integration.hosts import free_port, module_home
from tests.integration.openwebui_stack import open_webui_profile, stack_up

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
LAN = "192.0.2.2"
PARTICIPANT = "ann"
STACK = f"owlan-{uuid.uuid4().hex[:6]}"

home, ops_home = module_home("owlan-home")


@pytest.fixture(scope="module")
def open_webui(home, tmp_path_factory, docker_client):
    path = open_webui_profile(
        tmp_path_factory.mktemp("owlan"),
        STACK,
        free_port(),
        f"{{port: {free_port()}, default_max_tokens: 24}}",
        extra=f"expose: {{address: {LAN}}}\nparticipants: {{names: [{PARTICIPANT}]}}\n",
    )
    with stack_up(path) as (_, report):
        state = StackState.for_stack(STACK)
        yield SimpleNamespace(
            url=report.exposed["open-webui"],
            # A participant's own account, made by `ops up` from the profile's participants:.
            email=participant_email(STACK, PARTICIPANT),
            password=state.secrets.get(participants.password_name(PARTICIPANT)).reveal(),
            ca=tls.tls_dir(state.root) / "ca.pem",
        )


@pytest.fixture(scope="module")
def trusting_home(open_webui, tmp_path_factory) -> Path:
    """A HOME whose NSS database (~/.pki/nssdb, what Chromium reads on Linux) trusts the stack's CA."""
    certutil = shutil.which("certutil")
    if certutil is None:
        missing("certutil (apt-get install libnss3-tools; bash .ci/ensure-chromium)")
    folder = tmp_path_factory.mktemp("laptop-home")
    db = folder / ".pki" / "nssdb"
    db.mkdir(parents=True)
    subprocess.run([certutil, "-d", f"sql:{db}", "-N", "--empty-password"], check=True)
    # C,,: a CA trusted to issue server certificates (as a participant's "install the CA" does).
    subprocess.run(
        [certutil, "-d", f"sql:{db}", "-A", "-t", "C,,", "-n", f"ops {STACK} CA", "-i", str(open_webui.ca)],
        check=True,
    )
    listed = subprocess.run([certutil, "-d", f"sql:{db}", "-L"], capture_output=True, text=True, check=True)
    assert f"ops {STACK} CA" in listed.stdout
    return folder


def launch(playwright_api, chromium, home: Path):
    env = {**os.environ, "HOME": str(home)}
    return playwright_api.chromium.launch(
        executable_path=str(chromium), headless=True, args=chromium_args(False), env=env
    )


def test_a_browser_without_the_ca_refuses_the_lan_address(open_webui, playwright_api, chromium, tmp_path):
    browser = launch(playwright_api, chromium, tmp_path)
    try:
        page = browser.new_page()
        with pytest.raises(Exception, match="ERR_CERT_AUTHORITY_INVALID"):
            page.goto(f"{open_webui.url}/auth", wait_until="load", timeout=60_000)
    finally:
        browser.close()


def test_a_participant_signs_in_over_the_lan_with_tls_and_chats(
    open_webui, trusting_home, playwright_api, chromium
):
    assert open_webui.url == open_webui.url.replace("http://", "https://") and LAN in open_webui.url
    browser = launch(playwright_api, chromium, trusting_home)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        sign_in(page, open_webui.url, open_webui.email, open_webui.password)
        assert page.url.startswith(f"https://{LAN}:")
        # The answer streams over Open WebUI's Socket.IO (a WebSocket through the TLS listener).
        wait = send(page, open_webui.url, "tiny", "What is a small language model?")
        assert wait.chars > 0, "no answer from the model over the LAN address"
        print(
            f"\nOpen WebUI over https://{LAN}: first text {wait.first_text_s:.2f} s, complete {wait.complete_s:.2f} s"
        )
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "open-webui-lan-chat.png"))
        context.close()
        browser.close()
