"""expose: on the real stack: the gateway and a web app over https on the LAN address with the stack CA,
plain http and untrusted clients refused there, loopback unchanged, nothing on 0.0.0.0, gone after down.

The real model host (the bundled tiny model) and a real container (the small web image), one stack
for the module; the address is this machine's eth0 address, 192.0.2.2.
"""

from __future__ import annotations

import contextlib
import io
import json
import ssl
import statistics
import time
import uuid
from types import SimpleNamespace

import httpx
import psutil
import pytest

from ops import profiles, tls
from ops.cli import main
from ops.doctor import Status
from ops.doctor.context import DoctorContext
from ops.doctor.exposure import ExposureCheck
from ops.errors import OpsError
from ops.host import tlsproxy
from ops.services import chainlit
from ops.stack import GATEWAY_KEY
from ops.state import StackState
from tests.integration.hosts import free_port, module_home
from tests.integration.webimage import web_image  # noqa: F401  (fixture)

LAN = "192.0.2.2"
STACK = f"lan-{uuid.uuid4().hex[:6]}"

home, ops_home = module_home("lan-home")


@pytest.fixture(scope="module")
def stack(home, tmp_path_factory, docker_client, web_image):  # noqa: F811
    web, rag, gateway = free_port(), free_port(), free_port()
    path = tmp_path_factory.mktemp("lan") / f"{STACK}.yaml"
    path.write_text(
        f"""\
name: {STACK}
models:
  tiny: {{path: bundled:tiny-fp32}}
gateway: {{port: {gateway}, bind: [127.0.0.1, stack-gateway], default_max_tokens: 64}}
services:
  web:
    kind: container
    image: {web_image}
    image_policy: pull
    ports: ["127.0.0.1:{web}:8080"]
    health: {{http: /health, body: ok, timeout: 120}}
  rag:
    kind: chainlit-rag
    image_policy: build
    ports: ["127.0.0.1:{rag}:8000"]
    environment: {{RAG_MAX_TOKENS: 16}}
    health: {{http: /health, timeout: 300}}
expose: {{address: {LAN}}}
"""
    )
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            code = main(["up", str(path)])
        assert code == 0, out.getvalue()
        state = StackState.for_stack(STACK)
        authority = tls.authority_of(tls.tls_dir(state.root) / "ca.pem")
        yield SimpleNamespace(
            path=path,
            web=web,
            rag=rag,
            gateway=gateway,
            key=state.secrets.get(GATEWAY_KEY).reveal(),
            ca=str(authority.certificate),
            trust=ssl.create_default_context(cafile=str(authority.certificate)),
            authority=authority,
            printed=out.getvalue(),
            state=state,
        )
    finally:
        main(["down", "--volumes", "--yes", str(path)])


def headers(stack) -> dict[str, str]:
    return {"authorization": f"Bearer {stack.key}"}


def test_the_chainlit_app_signs_in_and_chats_over_wss_on_the_lan_address(stack):
    """Chainlit checks each Socket.IO connection's Origin: the room's https origin is allowed, another is not."""
    url = f"https://{LAN}:{stack.rag}"
    password = stack.state.secrets.get(chainlit.PASSWORD)
    cookies = chainlit.sign_in(url, chainlit.USERNAME, password, verify=stack.ca)
    profiles_offered = chainlit.chat_profiles(url, cookies, verify=stack.ca)
    assert "tiny" in profiles_offered
    with chainlit.ChatClient(url, cookies, profile="tiny", timeout=120, verify=stack.ca) as chat:
        answer = chat.ask("What is in the documents?")
    assert answer.tokens and answer.model == "tiny"
    with (
        pytest.raises(OpsError, match="refused the Socket.IO connection"),
        chainlit.ChatClient(
            url, cookies, profile="tiny", timeout=30, verify=stack.ca, origin="https://elsewhere.example"
        ),
    ):
        pass
    container = docker_engine_env(stack)
    assert container["RAG_ALLOWED_ORIGINS"] == url


def docker_engine_env(stack) -> dict[str, str]:
    from ops.docker_engine import connect

    found = connect().containers.get(f"ops-{STACK}-rag")
    return dict(item.split("=", 1) for item in found.attrs["Config"]["Env"])


def test_up_prints_the_lan_urls_the_ca_file_and_its_fingerprint(stack):
    lines = stack.printed.splitlines()
    assert f"  web       https://{LAN}:{stack.web}" in lines
    assert f"  rag       https://{LAN}:{stack.rag}" in lines
    assert f"  gateway   https://{LAN}:{stack.gateway}/v1" in lines
    assert any(line.startswith(f"  CA        {stack.ca} (Windows/macOS: ") for line in lines)
    assert f"  CA SHA-256 {stack.authority.fingerprint}" in lines


def test_the_gateway_answers_over_https_on_the_lan_address_with_the_stack_ca(stack):
    url = f"https://{LAN}:{stack.gateway}/v1"
    with httpx.Client(verify=stack.trust, timeout=60) as client:
        models = client.get(f"{url}/models", headers=headers(stack))
        assert models.status_code == 200 and "tiny" in [m["id"] for m in models.json()["data"]]
        answer = client.post(
            f"{url}/chat/completions",
            headers=headers(stack),
            json={"model": "tiny", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8},
        )
        assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"]
        # The key is still needed through TLS.
        assert client.get(f"{url}/models").status_code == 401


def test_the_web_app_answers_over_https_on_the_lan_address(stack):
    answer = httpx.get(f"https://{LAN}:{stack.web}/health", verify=stack.trust, timeout=30)
    assert answer.status_code == 200 and answer.text.strip() == "ok"


def test_plain_http_and_untrusted_clients_are_refused_on_the_lan_address(stack):
    for port in (stack.gateway, stack.web, stack.rag):
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://{LAN}:{port}/health", timeout=10)
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"https://{LAN}:{port}/health", timeout=10)


def test_loopback_still_works_in_plain_http(stack):
    assert httpx.get(f"http://127.0.0.1:{stack.gateway}/health", timeout=10).status_code == 200
    assert httpx.get(f"http://127.0.0.1:{stack.web}/health", timeout=10).text.strip() == "ok"


def test_nothing_listens_on_every_address(stack):
    ports = {stack.gateway, stack.web, stack.rag}
    listening = [
        c
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr.port in ports
    ]
    where = {(c.laddr.ip, c.laddr.port) for c in listening}
    assert {(LAN, stack.gateway), (LAN, stack.web), (LAN, stack.rag)} <= where
    assert ("127.0.0.1", stack.gateway) in where
    assert not [w for w in where if w[0] in ("0.0.0.0", "::")], where
    # The model host itself listens on no wildcard address at all.
    host = json.loads(stack.state.pid_file.read_text())["pid"]
    wide = [
        c
        for c in psutil.Process(host).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr.ip in ("0.0.0.0", "::")
    ]
    assert wide == []


def test_doctor_says_what_is_exposed_where(stack):
    outcome = ExposureCheck().run(DoctorContext(str(stack.path)))
    assert outcome.status == Status.OK, outcome.detail
    assert f"exposed on {LAN} over TLS" in outcome.detail
    assert (
        f"web https://{LAN}:{stack.web}" in outcome.detail
        and f"gateway https://{LAN}:{stack.gateway}" in outcome.detail
    )


def test_the_room_reaches_the_gateway_from_its_own_loopback_address(stack):
    """Through the listener the gateway sees 127.0.0.2, not 127.0.0.1 (it can tell the room from this machine)."""
    assert tlsproxy.SOURCE == "127.0.0.2"
    host = json.loads(stack.state.pid_file.read_text())["pid"]
    with httpx.Client(verify=stack.trust, timeout=30) as client:
        client.get(f"https://{LAN}:{stack.gateway}/health")
        peers = {
            c.raddr.ip
            for c in psutil.Process(host).net_connections(kind="inet")
            if c.raddr and c.laddr.port == stack.gateway and c.laddr.ip == "127.0.0.1"
        }
    assert "127.0.0.2" in peers


def _stream(client: httpx.Client, url: str, key: str) -> tuple[float, float, int]:
    """(seconds to the first token, tokens per second after it, tokens) of one streamed answer."""
    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "Tell me a story about a lighthouse."}],
        "max_tokens": 64,
        "stream": True,
    }
    started = time.perf_counter()
    first = None
    tokens = 0
    with client.stream(
        "POST", f"{url}/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
    ) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta = json.loads(line[6:])["choices"][0]["delta"].get("content")
            if delta:
                tokens += 1
                first = first or time.perf_counter()
    end = time.perf_counter()
    assert first is not None
    return first - started, (tokens - 1) / max(end - first, 1e-9), tokens


def test_tls_listener_overhead_on_a_chat_stream(stack):
    """TTFT and tokens/s through https on the LAN address against plain http on loopback (figures printed)."""
    lan = httpx.Client(verify=stack.trust, timeout=120)
    local = httpx.Client(timeout=120)
    results: dict[str, list[tuple[float, float, int]]] = {"loopback": [], "lan-tls": []}
    try:
        for _ in range(2):  # warm: connections, TLS sessions
            _stream(local, f"http://127.0.0.1:{stack.gateway}/v1", stack.key)
            _stream(lan, f"https://{LAN}:{stack.gateway}/v1", stack.key)
        for i in range(12):  # interleaved, alternating who goes first
            order = ["loopback", "lan-tls"] if i % 2 == 0 else ["lan-tls", "loopback"]
            for which in order:
                client, url = (
                    (local, f"http://127.0.0.1:{stack.gateway}/v1")
                    if which == "loopback"
                    else (lan, f"https://{LAN}:{stack.gateway}/v1")
                )
                results[which].append(_stream(client, url, stack.key))
    finally:
        lan.close()
        local.close()
    summary = {
        which: {
            "ttft_ms_p50": round(statistics.median(r[0] for r in runs) * 1000, 2),
            "tokens_per_s_p50": round(statistics.median(r[1] for r in runs), 1),
            "tokens": statistics.median(r[2] for r in runs),
        }
        for which, runs in results.items()
    }
    print("\nTLS listener overhead (12 streams each, medians):", json.dumps(summary))
    # The listener adds a hop and encryption, not a model's worth of time: a generous bound.
    assert summary["lan-tls"]["ttft_ms_p50"] < summary["loopback"]["ttft_ms_p50"] + 50
    assert summary["lan-tls"]["tokens_per_s_p50"] > 0.7 * summary["loopback"]["tokens_per_s_p50"]


def test_down_stops_the_listeners(stack):
    assert main(["down", "--yes", str(stack.path)]) == 0
    for port in (stack.gateway, stack.web, stack.rag):
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"https://{LAN}:{port}/health", verify=stack.trust, timeout=5)
    # The CA stays (laptops keep trusting it); the next up reuses it.
    assert (
        tls.authority_of(tls.tls_dir(stack.state.root) / "ca.pem").fingerprint == stack.authority.fingerprint
    )
    profiles.load_path(stack.path)  # the profile is unchanged for the fixture's own down
