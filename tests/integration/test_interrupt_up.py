"""Ctrl-C during `ops up`: every wait ends within a moment, the user is told what runs and what to do, exit 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from ops.labels import STACK as LABEL_STACK
from tests.integration.hosts import free_port
from tests.integration.webimage import web_image  # noqa: F401  (fixture)

STACK = "interrupt"


@pytest.fixture
def never_ready(tmp_path, ops_home, docker_client, web_image):  # noqa: F811
    """A profile whose one service runs but never passes its probe (its health path is a 404)."""
    path = tmp_path / f"{STACK}.yaml"
    path.write_text(
        f"""\
name: {STACK}
models:
  tiny: {{path: bundled:tiny-fp32}}
gateway: {{port: {free_port()}, bind: [127.0.0.1]}}
services:
  web:
    kind: container
    image: ops-test-web:2
    image_policy: pull
    ports: ["127.0.0.1:{free_port()}:8080"]
    health: {{http: /never-there, timeout: 300, interval: 5}}
"""
    )
    env = {**os.environ, "OPS_HOME": str(ops_home)}
    yield path, env
    subprocess.run(
        [sys.executable, "-m", "ops", "down", "--volumes", "--yes", str(path)], env=env, capture_output=True
    )
    selector = {"label": f"{LABEL_STACK}={STACK}"}
    assert docker_client.containers.list(all=True, filters=selector) == []


def test_ctrl_c_during_up_stops_waiting_says_what_runs_and_exits_130(never_ready, docker_client):
    path, env = never_ready
    selector = {"label": f"{LABEL_STACK}={STACK}"}
    up = subprocess.Popen(
        [sys.executable, "-m", "ops", "up", str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not any(c.status == "running" for c in docker_client.containers.list(filters=selector)):
            assert up.poll() is None, up.communicate()
            assert time.monotonic() < deadline, "the container never started"
            time.sleep(0.2)
        time.sleep(3)  # well inside a 5 s wait between two probes
        up.send_signal(signal.SIGINT)
        sent = time.monotonic()
        out, err = up.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if up.poll() is None:
            up.kill()
    assert up.returncode == 130, err
    assert took < 2, f"took {took:.1f} s after Ctrl-C"
    assert "interrupted: ops up interrupt stopped waiting" in err
    assert "web (running" in err, err
    assert f"`ops up {STACK}` again to finish" in err and f"`ops down {STACK}` to remove" in err
    assert "Traceback" not in out + err
    # Nothing was removed on the way out: the next `ops up` finishes what this one started.
    assert [c.status for c in docker_client.containers.list(all=True, filters=selector)] == ["running"]
