"""expose: resolved once into the plan (public URLs, listeners), checked against this machine, and served over TLS."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import httpx
import pytest

from ops import exposure, tls
from ops.errors import ConflictError, ExitCode, ProfileError
from ops.host import tlsproxy
from ops.host.config import HostConfig, HostExposure
from ops.plan import resolve
from ops.profiles import load_path

LAN = "192.0.2.2"  # this machine's eth0 address


def plan_of(tmp_path: Path, body: str):
    path = tmp_path / "lan.yaml"
    path.write_text("models:\n  tiny: {path: bundled:tiny-fp32}\n" + body)
    return resolve(load_path(path), ask_catalog=False)


SERVICES = (
    "gateway: {port: 8123}\n"
    "services:\n"
    "  ui: {kind: open-webui}\n"
    "  rag: {kind: chainlit-rag, ports: ['127.0.0.1:8501:8000']}\n"
    "  spare: {kind: container, image: 'nginx:1', ports: ['9999:80'], enabled: false}\n"
)


def test_without_expose_the_plan_has_no_exposure_and_public_urls_stay_on_this_machine(tmp_path):
    plan = plan_of(tmp_path, SERVICES)
    assert plan.expose is None
    assert plan.public_url("ui") == "http://127.0.0.1:3000"
    assert plan.public_url("gateway") == "http://127.0.0.1:8123/v1"
    assert plan.wiring(None, None).public_urls == ()


def test_the_plan_holds_each_exposed_services_https_url_with_the_same_port(tmp_path):
    plan = plan_of(tmp_path, SERVICES + f"expose: {{address: {LAN}}}\n")
    assert plan.expose is not None
    assert plan.expose.urls == {
        "ui": f"https://{LAN}:3000",
        "rag": f"https://{LAN}:8501",
        "gateway": f"https://{LAN}:8123/v1",
    }
    assert plan.public_url("ui") == f"https://{LAN}:3000"
    assert plan.public_url("gateway") == f"https://{LAN}:8123/v1"
    listeners = {(x.name, x.port, x.target_host, x.target_port) for x in plan.expose.listeners}
    assert listeners == {
        ("ui", 3000, "127.0.0.1", 3000),
        ("rag", 8501, "127.0.0.1", 8501),
        ("gateway", 8123, "127.0.0.1", 8123),
    }
    # Disabled services are not exposed; unknown names are refused with the list.
    assert plan.expose.url("spare") == ""


def test_gateway_false_keeps_the_gateway_off_the_lan(tmp_path):
    plan = plan_of(tmp_path, SERVICES + f"expose: {{address: {LAN}, gateway: false}}\n")
    assert plan.expose is not None and "gateway" not in plan.expose.urls
    assert plan.public_url("gateway") == "http://127.0.0.1:8123/v1"


def test_kinds_get_their_public_origin_in_their_environment(tmp_path):
    from ops.secrets import SecretStore

    plan = plan_of(tmp_path, SERVICES + f"expose: {{address: {LAN}}}\n")
    secrets = SecretStore(tmp_path / "secrets.json")
    ctx = plan.wiring(secrets, secrets.get_or_create("gateway-key"))
    ui = plan.services["ui"].container(ctx).environment
    rag = plan.services["rag"].container(ctx).environment
    assert ui["WEBUI_URL"] == f"https://{LAN}:3000"
    assert rag["RAG_ALLOWED_ORIGINS"] == f"https://{LAN}:8501"
    plain = plan_of(tmp_path, SERVICES)
    ctx = plain.wiring(secrets, secrets.get_or_create("gateway-key"))
    assert "WEBUI_URL" not in plain.services["ui"].container(ctx).environment
    assert "RAG_ALLOWED_ORIGINS" not in plain.services["rag"].container(ctx).environment


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "gateway: {bind: ['0.0.0.0']}\n",
            "gateway.bind publishes on 0.0.0.0",
        ),
        (
            "services:\n  ui: {kind: open-webui, ports: ['0.0.0.0:3000:8080']}\n",
            "services.ui.ports publishes on 0.0.0.0",
        ),
        (
            "gateway: {bind: [stack-gateway]}\n",
            "expose.gateway needs the gateway on loopback",
        ),
        (
            "services:\n  ui: {kind: open-webui}\n  two: {kind: open-webui, ports: ['127.0.0.3:3000:8080']}\n",
            "port 3000 is published by both ui and two",
        ),
    ],
)
def test_a_profile_that_cannot_be_exposed_with_tls_stops_at_the_plan(tmp_path, body, message):
    with pytest.raises(ProfileError, match=message) as caught:
        plan_of(tmp_path, body + f"expose: {{address: {LAN}}}\n")
    assert caught.value.hint


def test_the_address_must_be_on_this_machine(tmp_path):
    exposure.check_address(LAN)
    with pytest.raises(
        ProfileError, match="expose.address 192.0.2.99 is not an address of this machine"
    ) as caught:
        exposure.check_address("192.0.2.99")
    assert f"{LAN} (eth0)" in (caught.value.hint or "")


def test_up_refuses_an_address_not_on_this_machine_before_anything_starts(tmp_path, capsys, monkeypatch):
    from ops.cli import main
    from ops.models.recipes import build as recipe_build

    built = []
    monkeypatch.setattr(recipe_build, "ensure_models", lambda *a, **k: built.append(a) or {})
    path = tmp_path / "away.yaml"
    path.write_text("models:\n  tiny: {path: bundled:tiny-fp32}\nexpose: {address: 192.0.2.99}\n")
    code = main(["up", str(path)])
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE
    assert "expose.address 192.0.2.99 is not an address of this machine" in err
    assert "hint:" in err and "192.0.2.2 (eth0)" in err
    assert built == [] and not (Path(tmp_path) / "ops-home" / "stacks" / "away" / "host.pid").exists()


def test_the_host_config_carries_the_listeners_and_a_new_certificate_restarts_the_host(tmp_path):
    plan = plan_of(tmp_path, SERVICES + f"expose: {{address: {LAN}}}\n")
    assert plan.expose is not None
    root = tmp_path / "state"
    root.mkdir()
    host, authority = HostExposure.prepare(plan.expose, root)
    assert authority.fingerprint and host.address == LAN
    config = HostConfig.from_plan(plan, ["127.0.0.1"], host)
    again = HostConfig.from_json(config.to_json())
    assert again == config and again.fingerprint() == config.fingerprint()
    plain = HostConfig.from_plan(plan, ["127.0.0.1"])
    assert (
        plain.fingerprint() != config.fingerprint() and HostConfig.from_json(plain.to_json()).expose is None
    )
    moved = HostExposure.prepare(exposure.ExposePlan("192.168.1.20", plan.expose.listeners, True), root)[0]
    assert HostConfig.from_plan(plan, ["127.0.0.1"], moved).fingerprint() != config.fingerprint()


@pytest.fixture
def echo_server():
    """An HTTP server on 127.0.0.1 (a free port) that says who connected."""
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"from {self.client_address[0]}".encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_the_tls_listener_forwards_to_loopback_and_refuses_plain_http(tmp_path, echo_server):
    tls.ensure_authority(tmp_path)
    cert = tls.ensure_server_certificate(tmp_path, LAN)
    port = echo_server
    proxy = tlsproxy.start(LAN, [(port, "127.0.0.1", port)], str(cert.certificate), str(cert.key))
    try:
        trusted = ssl.create_default_context(cafile=str(tls.tls_dir(tmp_path) / "ca.pem"))
        answer = httpx.get(f"https://{LAN}:{port}/", verify=trusted, timeout=10)
        # The room's connections reach loopback from 127.0.0.2: the gateway tells them from this machine.
        assert answer.status_code == 200 and answer.text == f"from {tlsproxy.SOURCE}"
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"https://{LAN}:{port}/", timeout=10)
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://{LAN}:{port}/", timeout=10)
        # A second listener on the same address and port is refused, naming the conflict.
        with pytest.raises(ConflictError, match=f"port {port} on {LAN} is already in use"):
            tlsproxy.start(LAN, [(port, "127.0.0.1", port)], str(cert.certificate), str(cert.key))
    finally:
        proxy.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"https://{LAN}:{port}/", verify=False, timeout=5)
    assert not proxy.thread.is_alive()


def test_the_tls_listener_passes_binary_both_ways_and_the_upstreams_end(tmp_path):
    """Raw TCP through the listener (what WebSockets ride on): 256 KiB each way, then the upstream's end."""
    tls.ensure_authority(tmp_path)
    cert = tls.ensure_server_certificate(tmp_path, LAN)
    upstream = socket.create_server(("127.0.0.1", 0))
    port = upstream.getsockname()[1]
    payload = bytes(range(256)) * 1024

    def reverse_and_close():
        conn, _ = upstream.accept()
        data = b""
        while len(data) < len(payload):
            data += conn.recv(65536)
        conn.sendall(data[::-1])
        conn.close()

    threading.Thread(target=reverse_and_close, daemon=True).start()
    proxy = tlsproxy.start(LAN, [(port, "127.0.0.1", port)], str(cert.certificate), str(cert.key))
    try:
        context = ssl.create_default_context(cafile=str(tls.tls_dir(tmp_path) / "ca.pem"))
        with (
            socket.create_connection((LAN, port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=LAN) as conn,
        ):
            assert conn.version() in ("TLSv1.2", "TLSv1.3") and conn.selected_alpn_protocol() in (
                None,
                "http/1.1",
            )
            conn.sendall(payload)
            got = b""
            while chunk := conn.recv(65536):
                got += chunk
        assert got == payload[::-1]
    finally:
        proxy.stop()
        upstream.close()
