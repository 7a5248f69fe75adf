"""The TLS listeners hold no client for ever: a handshake has a deadline, and connections are capped in all
and per client address, so one laptop (or a port scan) cannot take the model host's file descriptors."""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
import time

import httpx
import pytest

from ops import tls
from ops.host import tlsproxy

LAN = "192.0.2.2"  # this machine's eth0 address


@pytest.fixture
def proxied(tmp_path, monkeypatch):
    """A TLS listener on LAN:port in front of an HTTP server on 127.0.0.1:port; (port, proxy, CA file)."""
    monkeypatch.setattr(tlsproxy, "HANDSHAKE_TIMEOUT", 0.5)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    tls.ensure_authority(tmp_path)
    cert = tls.ensure_server_certificate(tmp_path, LAN)
    proxy = tlsproxy.start(LAN, [(port, "127.0.0.1", port)], str(cert.certificate), str(cert.key))
    try:
        yield port, proxy, str(tls.tls_dir(tmp_path) / "ca.pem")
    finally:
        proxy.stop()
        server.shutdown()


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the peer closed ``sock`` (None if it did not within ``seconds``)."""
    sock.settimeout(seconds)
    started = time.monotonic()
    try:
        while sock.recv(1024):
            pass
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def test_a_client_that_never_finishes_its_handshake_is_closed(proxied):
    port, proxy, _ = proxied
    with socket.create_connection((LAN, port)) as idle:  # TCP, then silence
        took = closed_within(idle, 5)
    assert took is not None and took < 3, "a silent client held its connection past the handshake deadline"
    deadline = time.monotonic() + 2
    while proxy.clients and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not proxy.clients


def test_connections_past_the_per_client_cap_are_closed_and_the_rest_still_served(proxied):
    port, proxy, ca = proxied
    proxy.max_per_client = 2
    trusted = ssl.create_default_context(cafile=ca)
    held = [socket.create_connection((LAN, port)) for _ in range(2)]
    try:
        time.sleep(0.2)
        with socket.create_connection((LAN, port)) as third:
            took = closed_within(third, 2)
        assert took is not None and took < 1, "a third connection from one address was not refused"
        assert proxy.refused >= 1
    finally:
        for sock in held:
            sock.close()
    # Once they end, the same client is served again.
    deadline = time.monotonic() + 3
    while proxy.clients and time.monotonic() < deadline:
        time.sleep(0.05)
    answer = httpx.get(f"https://{LAN}:{port}/", verify=trusted, timeout=10)
    assert answer.status_code == 200 and answer.text == "ok"


def test_the_total_cap_counts_every_client(proxied):
    _, proxy, _ = proxied
    proxy.max_connections = 3
    admitted = [proxy.admit(f"10.0.0.{i}") for i in range(4)]
    assert admitted == [True, True, True, False]
    proxy.leave("10.0.0.0")
    assert proxy.admit("10.0.0.9")
