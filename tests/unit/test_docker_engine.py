"""connect() fails fast, in one line naming the endpoint, when no daemon answers."""

from __future__ import annotations

import socket
import time

import pytest

from ops.docker_engine import DEFAULT_ENDPOINT, connect, endpoint
from ops.errors import DockerError, ExitCode


@pytest.fixture(autouse=True)
def _no_docker_env(monkeypatch, tmp_path):
    """Keep the developer's DOCKER_* settings and CLI contexts out of these tests."""
    for name in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("unix:///tmp/nonexistent.sock", "no socket there"),
        ("tcp://127.0.0.1:1", "connection refused"),
    ],
)
def test_dead_endpoint_raises_docker_error_quickly(monkeypatch, host, reason):
    monkeypatch.setenv("DOCKER_HOST", host)
    started = time.monotonic()
    with pytest.raises(DockerError) as caught:
        connect()
    assert time.monotonic() - started < 10
    error = caught.value
    assert error.message == f"Docker daemon not reachable at {host}: {reason}"
    assert "\n" not in error.message
    assert "DOCKER_HOST" in error.hint
    assert error.exit_code == ExitCode.DOCKER


def test_silent_daemon_times_out_instead_of_hanging(monkeypatch, tmp_path):
    # Listens but never answers: the kernel accepts the connection, nobody reads it.
    path = tmp_path / "silent.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(1)
        monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
        started = time.monotonic()
        with pytest.raises(DockerError, match=r"no answer within 0\.5 s"):
            connect(timeout=0.5)
        assert time.monotonic() - started < 5


def test_endpoint_prefers_docker_host_then_default(monkeypatch):
    assert endpoint() == DEFAULT_ENDPOINT
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.5:2375")
    assert endpoint() == "tcp://10.0.0.5:2375"


def test_work_timeout_outlasts_the_ping_for_commands_that_change_things(monkeypatch):
    """`up` and `down` wait minutes for a slow removal; the ping stays short so a dead daemon fails fast."""

    class Api:
        timeout = None

    class FakeClient:
        api = Api()

        def ping(self):
            return True

    made: list[float] = []

    def from_env(timeout):
        made.append(timeout)
        return FakeClient()

    monkeypatch.setattr("ops.docker_engine.docker.from_env", from_env)
    assert connect(timeout=5).api.timeout is None  # the client keeps the 5 s it was made with
    assert connect(timeout=5, work_timeout=300).api.timeout == 300
    assert made == [5, 5]
