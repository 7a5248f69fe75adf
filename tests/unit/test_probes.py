"""``ops.probes``: each probe against a real local server (or the fake daemon), and ``wait_for``'s timing."""

from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest

from ops.errors import ExitCode, ProbeTimeout
from ops.probes import ContainerProbe, HttpProbe, ProbeResult, TcpProbe, wait_for
from tests.unit.fakedocker import FakeDocker


class Handler(http.server.BaseHTTPRequestHandler):
    ROUTES = {
        "/health": (200, "ready"),
        "/starting": (200, "still starting"),
        "/down": (503, "unavailable"),
        "/created": (201, "made"),
    }

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/health")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status, text = self.ROUTES.get(self.path, (404, "no such page"))
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    """``http://127.0.0.1:<port>`` of a small HTTP server in a thread."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on (bound once, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------- HttpProbe


def test_http_probe_passes_on_the_expected_status(server):
    result = HttpProbe(f"{server}/health").check()
    assert result == ProbeResult(True, "HTTP 200")


def test_http_probe_with_a_body_that_is_there(server):
    assert HttpProbe(f"{server}/health", body="ready").check() == ProbeResult(True, "HTTP 200")


def test_http_probe_body_mismatch(server):
    result = HttpProbe(f"{server}/starting", body="ready").check()
    assert result.ok is False
    assert result.detail == "body lacks 'ready': 'still starting'"


def test_http_probe_status_mismatch(server):
    result = HttpProbe(f"{server}/down").check()
    assert result == ProbeResult(False, "HTTP 503, expected 200")


def test_http_probe_expects_the_configured_status(server):
    assert HttpProbe(f"{server}/created", status=201).check().ok is True
    assert HttpProbe(f"{server}/health", status=201).check() == ProbeResult(False, "HTTP 200, expected 201")


def test_http_probe_does_not_follow_redirects(server):
    assert HttpProbe(f"{server}/moved").check() == ProbeResult(False, "HTTP 302, expected 200")


def test_http_probe_on_a_closed_port(closed_port):
    probe = HttpProbe(f"http://127.0.0.1:{closed_port}/health")
    result = probe.check()
    assert result.ok is False
    assert result.detail.startswith("ConnectError: ")
    assert probe.target == f"GET http://127.0.0.1:{closed_port}/health"


def test_http_probe_times_out_on_a_silent_server(silent_server):
    started = time.monotonic()
    result = HttpProbe(f"http://{silent_server}/health", timeout=0.3).check()
    assert result.ok is False
    assert result.detail.startswith("ReadTimeout")
    assert time.monotonic() - started < 2


# --------------------------------------------------------------------------------------------- TcpProbe


def test_tcp_probe_connects_to_a_listening_socket():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        probe = TcpProbe("127.0.0.1", port)
        assert probe.check() == ProbeResult(True, "connected")
        assert probe.target == f"tcp://127.0.0.1:{port}"


def test_tcp_probe_on_a_closed_port(closed_port):
    assert TcpProbe("127.0.0.1", closed_port).check() == ProbeResult(False, "Connection refused")


# --------------------------------------------------------------------------------------------- ContainerProbe


@pytest.fixture
def docker_client() -> FakeDocker:
    client = FakeDocker()
    client.add_image("img:1")
    return client


def test_container_probe_running(docker_client):
    container = docker_client.run("img:1", name="web")
    probe = ContainerProbe(container)
    assert probe.check() == ProbeResult(True, "running")
    assert probe.target == "container web"


def test_container_probe_sees_a_state_change_the_snapshot_did_not(docker_client):
    container = docker_client.run("img:1", name="web")
    docker_client.set_state("web", "exited", exit_code=137)
    assert container.status == "running"  # a snapshot, until reloaded
    assert ContainerProbe(container).check() == ProbeResult(False, "exited (exit code 137)")


def test_container_probe_waits_for_a_healthcheck(docker_client):
    container = docker_client.run("img:1", name="web")
    docker_client.set_state("web", "running", health="starting")
    assert ContainerProbe(container).check() == ProbeResult(False, "health starting")
    docker_client.set_state("web", "running", health="healthy")
    assert ContainerProbe(container).check() == ProbeResult(True, "running, healthy")


def test_container_probe_of_a_removed_container(docker_client):
    container = docker_client.run("img:1", name="web")
    docker_client.containers.get("web").remove(force=True)
    assert ContainerProbe(container).check() == ProbeResult(False, "container is gone")


# --------------------------------------------------------------------------------------------- wait_for


class Scripted:
    """A probe that answers from a script (the last answer repeats) and counts its checks."""

    target = "scripted"

    def __init__(self, *answers: bool):
        self.answers = list(answers)
        self.checks = 0

    def check(self) -> ProbeResult:
        ok = self.answers[min(self.checks, len(self.answers) - 1)]
        self.checks += 1
        return ProbeResult(ok, f"answer {self.checks}")


def test_wait_for_returns_at_once_when_the_probe_passes():
    probe = Scripted(True)
    started = time.monotonic()
    assert wait_for(probe, timeout=5, interval=1) == ProbeResult(True, "answer 1")
    assert probe.checks == 1
    assert time.monotonic() - started < 0.5


def test_wait_for_returns_as_soon_as_the_probe_passes():
    probe = Scripted(False, False, True, False)
    started = time.monotonic()
    assert wait_for(probe, timeout=5, interval=0.02) == ProbeResult(True, "answer 3")
    assert probe.checks == 3
    assert time.monotonic() - started < 1


def test_wait_for_a_real_server_that_comes_up_late(closed_port):
    """The probe fails while nothing listens, then passes once the server is there."""
    httpd = None

    def start_late():
        nonlocal httpd
        time.sleep(0.3)
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", closed_port), Handler)
        httpd.serve_forever(poll_interval=0.05)

    thread = threading.Thread(target=start_late, daemon=True)
    thread.start()
    try:
        result = wait_for(HttpProbe(f"http://127.0.0.1:{closed_port}/health"), timeout=5, interval=0.05)
        assert result == ProbeResult(True, "HTTP 200")
    finally:
        while httpd is None and thread.is_alive():
            time.sleep(0.01)
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()


def test_wait_for_times_out_with_target_last_answer_and_evidence(server):
    probe = HttpProbe(f"{server}/down")
    started = time.monotonic()
    with pytest.raises(ProbeTimeout) as caught:
        wait_for(probe, timeout=0.4, interval=0.05, evidence=lambda: ["log: listening", "log: db locked"])
    waited = time.monotonic() - started
    assert 0.35 < waited < 2
    error = caught.value
    assert error.message.startswith(f"GET {server}/down: not ready after ")
    assert error.message.endswith("(last answer: HTTP 503, expected 200)")
    assert error.evidence == ["log: listening", "log: db locked"]
    assert "health.timeout" in error.hint
    assert error.exit_code == ExitCode.TIMEOUT


def test_wait_for_timeout_passes_the_callers_hint_and_no_evidence_without_a_source():
    with pytest.raises(ProbeTimeout) as caught:
        wait_for(Scripted(False), timeout=0.1, interval=0.02, hint="look at the thing")
    assert caught.value.hint == "look at the thing"
    assert caught.value.evidence == []


def test_wait_for_fail_fast_stops_with_its_reason():
    probe = Scripted(False)
    asked = []

    def crashed():
        asked.append(probe.checks)
        return "the container exited (exit code 1, 0 restarts)" if probe.checks >= 2 else None

    started = time.monotonic()
    with pytest.raises(ProbeTimeout) as caught:
        wait_for(probe, timeout=10, interval=0.02, fail_fast=crashed, evidence=lambda: ["Traceback", "boom"])
    assert time.monotonic() - started < 1
    assert probe.checks == 2
    assert asked == [1, 2]
    assert (
        caught.value.message
        == "scripted: the container exited (exit code 1, 0 restarts) (last answer: answer 2)"
    )
    assert caught.value.evidence == ["Traceback", "boom"]


def test_wait_for_does_not_ask_fail_fast_once_the_probe_passes():
    def never():
        raise AssertionError("fail_fast asked after a pass")

    assert wait_for(Scripted(True), timeout=1, interval=0.02, fail_fast=never).ok is True


def count_checks(interval: float, window: float = 1.0) -> int:
    probe = Scripted(False)
    with pytest.raises(ProbeTimeout):
        wait_for(probe, timeout=window, interval=interval)
    return probe.checks


def test_wait_for_honours_the_interval():
    slow = count_checks(0.2)
    fast = count_checks(0.05)
    assert 4 <= slow <= 7  # ~ one check at 0 s, then every 0.2 s up to 1 s
    assert fast >= 12  # ~ 21 expected
    assert fast > 2 * slow
