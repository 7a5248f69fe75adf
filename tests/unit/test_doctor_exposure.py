"""doctor's network.exposure: what is exposed where, TLS with the stack CA on each port, 0.0.0.0 warned."""

from __future__ import annotations

import socket
import threading

import pytest

from ops import tls
from ops.doctor import Status
from ops.doctor.context import DoctorContext
from ops.doctor.exposure import ExposureCheck
from ops.host import tlsproxy
from ops.host.config import HostExposure
from ops.state import StackState

LAN = "192.0.2.2"


def check(path):
    return ExposureCheck().run(DoctorContext(str(path)))


def write(tmp_path, body: str):
    path = tmp_path / "room.yaml"
    path.write_text("models:\n  tiny: {path: bundled:tiny-fp32}\n" + body)
    return path


def test_without_expose_it_says_loopback_only(tmp_path):
    outcome = check(write(tmp_path, "gateway: {port: 8123}\nservices:\n  ui: {kind: open-webui}\n"))
    assert outcome.status == Status.OK
    assert outcome.detail == "loopback only: gateway http://127.0.0.1:8123/v1, ui http://127.0.0.1:3000"


def test_a_gateway_bound_to_every_address_is_warned(tmp_path):
    outcome = check(write(tmp_path, "gateway: {bind: ['0.0.0.0']}\n"))
    assert outcome.status == Status.WARN
    assert "gateway.bind 0.0.0.0 listen on every network, in plain http" in outcome.detail
    assert "expose:" in (outcome.fix or "")


def test_exposed_without_a_ca_yet_fails_with_up_as_the_fix(tmp_path):
    outcome = check(write(tmp_path, f"expose: {{address: {LAN}}}\n"))
    assert outcome.status == Status.FAIL and "has no CA yet" in outcome.detail
    assert outcome.fix == f"`ops up {tmp_path / 'room.yaml'}` makes it"


@pytest.fixture
def listening():
    """A free port with something answering on 127.0.0.1 behind it."""
    server = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=lambda: server.accept(), daemon=True).start()
    yield server.getsockname()[1]
    server.close()


def test_exposed_ports_answering_tls_from_the_stack_ca_are_ok_and_others_fail(tmp_path, listening):
    port = listening
    path = write(tmp_path, f"gateway: {{port: {port}}}\nexpose: {{address: {LAN}}}\n")
    root = StackState.for_stack("room").ensure().root
    from ops.plan import resolve
    from ops.profiles import load_path

    plan = resolve(load_path(path), ask_catalog=False)
    assert plan.expose is not None
    host, authority = HostExposure.prepare(plan.expose, root)
    outcome = check(path)
    assert outcome.status == Status.FAIL
    assert f"gateway https://{LAN}:{port}: nothing listens" in outcome.detail
    assert "ops up" in (outcome.fix or "")
    proxy = tlsproxy.run(host)
    try:
        outcome = check(path)
        assert outcome.status == Status.OK, outcome.detail
        assert outcome.detail.startswith(
            f"exposed on {LAN} over TLS (CA SHA-256 {authority.fingerprint[:23]}...)"
        )
        assert f"gateway https://{LAN}:{port}" in outcome.detail
    finally:
        proxy.stop()
    # A certificate from another CA on that port: not trusted.
    other = tmp_path / "other"
    other.mkdir()
    cert = tls.ensure_server_certificate(other, LAN)
    proxy = tlsproxy.start(LAN, [(port, "127.0.0.1", port)], str(cert.certificate), str(cert.key))
    try:
        outcome = check(path)
        assert outcome.status == Status.FAIL
        assert "certificate not from the stack's CA" in outcome.detail
    finally:
        proxy.stop()
