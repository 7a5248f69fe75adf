"""``ops doctor`` against a real stack (real model host, real Docker), broken on purpose one fault at a time.

The stack is the bundled tiny model (from a copy of its folder, so it can be deleted) plus one
small ``container`` service with a volume. Before each test ``ops up`` heals whatever the test
before broke; each test then breaks one thing and asserts that doctor names it, with the fix.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from ops import lifecycle, paths, profiles
from ops.cli import main
from ops.doctor.context import LABEL_DOCTOR
from ops.errors import ConflictError
from ops.host import process
from ops.host.info import HostInfo
from ops.labels import STACK as LABEL_STACK
from ops.plan import resolve
from ops.profiles import LoadedProfile
from ops.state import StackState
from tests.integration.hosts import free_port, module_home
from tests.integration.webimage import web_image  # noqa: F401  (fixture)

STACK = f"doctor-{uuid.uuid4().hex[:6]}"
#: They judge the machine, not the stack: on a small or GPU machine, or one with builds to reclaim, they may rightly warn.
MACHINE_CHECKS = {"host.gpu", "host.memory", "host.disk", "docker.disk", "docker.reclaimable"}


@dataclass(frozen=True)
class Stack:
    path: Path
    loaded: LoadedProfile
    model_dir: Path
    gateway_port: int
    web_port: int


home, ops_home = module_home("doctor-home")


@pytest.fixture(scope="module")
def stack(home, tmp_path_factory, docker_client, web_image):  # noqa: F811
    folder = tmp_path_factory.mktemp("doctor")
    model_dir = folder / "tiny"
    shutil.copytree(paths.bundled_model("tiny-fp32"), model_dir)
    gateway_port, web_port = free_port(), free_port()
    path = folder / f"{STACK}.yaml"
    path.write_text(
        f"""\
name: {STACK}
models:
  tiny: {{path: ./tiny}}
gateway: {{port: {gateway_port}, bind: [127.0.0.1, stack-gateway], default_max_tokens: 16}}
services:
  web:
    kind: container
    image: {web_image}
    image_policy: pull
    ports: ["127.0.0.1:{web_port}:8080"]
    volumes: ["data:/data"]
    health: {{http: /health, body: ok, timeout: 60}}
volumes:
  data: {{}}
"""
    )
    loaded = profiles.load_path(path)
    try:
        lifecycle.up(resolve(loaded))
        yield Stack(path, loaded, model_dir, gateway_port, web_port)
    finally:
        lifecycle.down(resolve(loaded, ask_catalog=False), remove_volumes=True)
    assert docker_client.containers.list(all=True, filters={"label": f"{LABEL_STACK}={STACK}"}) == []


@pytest.fixture
def healthy(stack, docker_client):
    """The stack, healed by `ops up` of whatever the previous test broke."""
    if not stack.model_dir.exists():
        shutil.copytree(paths.bundled_model("tiny-fp32"), stack.model_dir)
    try:
        lifecycle.up(resolve(stack.loaded))
    except ConflictError:  # a host left on other addresses by a failed test: start it afresh
        process.stop(StackState.for_stack(STACK))
        lifecycle.up(resolve(stack.loaded))
    yield stack
    leftovers = docker_client.containers.list(all=True, filters={"label": f"{LABEL_DOCTOR}={STACK}"})
    assert leftovers == [], "doctor removes the containers it starts"


def doctor(capsys, stack: Stack, *flags: str) -> tuple[int, dict[str, dict], dict]:
    code = main(["doctor", "--json", *flags, str(stack.path)])
    report = json.loads(capsys.readouterr().out)
    return code, {c["name"]: c for c in report["checks"]}, report


def not_ok(checks: dict[str, dict]) -> dict[str, str]:
    return {n: f"{c['status']}: {c['detail']}" for n, c in checks.items() if c["status"] != "ok"}


def host_pid(stack: Stack) -> int:
    return HostInfo.read(StackState.for_stack(stack.loaded.name).pid_file).pid


def kill_host(stack: Stack) -> int:
    pid = host_pid(stack)
    process = psutil.Process(pid)
    process.kill()
    process.wait(10)
    return pid


def test_a_healthy_stack_is_all_ok(healthy, capsys):
    code, checks, report = doctor(capsys, healthy)
    problems = {n: s for n, s in not_ok(checks).items() if n not in MACHINE_CHECKS}
    assert problems == {}
    assert all(checks[n]["status"] != "fail" for n in MACHINE_CHECKS)
    assert code == 0 and report["profile"] == STACK
    assert {"services.container:web", "services.volumes", "network.host-gateway"} <= set(checks)
    assert checks["network.host-gateway"]["detail"].endswith("answers HTTP/1.1 200 OK")
    assert checks["network.ports"]["detail"].startswith("free or held by this stack")
    # tiny is served by the batching engine (the default path): Foundry needs no registration of it.
    assert checks["models.registered"]["detail"] == (
        "tiny: served by the batching engine from the folder, nothing to register"
    )


def test_the_table_shows_each_group_and_a_summary(healthy, capsys):
    code = main(["doctor", str(healthy.path)])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    # This profile has no Open WebUI, Chainlit or WebGPU demo: the chain group has no checks.
    assert [line for line in lines if not line.startswith(" ")][:-1] == [
        "host",
        "docker",
        "network",
        "models",
        "gateway",
        "services",
        "offline",
    ]
    assert lines[-1].startswith(f"{STACK}: ") and "fail" not in lines[-1]


def test_model_host_killed(healthy, capsys):
    pid = kill_host(healthy)
    code, checks, _ = doctor(capsys, healthy)
    assert code == 1
    host = checks["gateway.host"]
    assert host["status"] == "fail"
    assert host["detail"].startswith(f"the model host died: pid {pid} is gone")
    assert f"`ops doctor {healthy.path} --fix` restarts it" in host["fix"]
    assert f"`ops up {healthy.path}`" in host["fix"]
    assert checks["gateway.health"]["status"] == "skipped"
    assert checks["gateway.health"]["detail"] == "depends on gateway.host, which failed"

    code, checks, report = doctor(capsys, healthy, "--fix")
    assert [(f["check"], f["action"], f["ok"]) for f in report["fixes"]] == [
        ("gateway.host", "restart the model host", True)
    ]
    assert checks["gateway.host"]["status"] == "ok" and checks["gateway.models"]["status"] == "ok"
    assert checks["network.host-gateway"]["status"] == "ok", "the restarted host listens on the network too"
    assert host_pid(healthy) != pid and code == 0


def test_containers_get_connection_refused_when_the_gateway_is_not_on_their_network(healthy, capsys):
    # As after an `ops up` while Docker was down: the host listens on 127.0.0.1 only.
    state = StackState.for_stack(STACK)
    process.stop(state)
    process.start(resolve(healthy.loaded), state, ["127.0.0.1"], timeout=120)
    code, checks, _ = doctor(capsys, healthy)
    assert code == 1
    reach = checks["network.host-gateway"]
    assert reach["status"] == "fail"
    assert (
        "connection refused (ECONNREFUSED); the gateway listens on 127.0.0.1 only, not on " in reach["detail"]
    )
    assert f"`ops doctor {healthy.path} --fix` restarts the host on " in reach["fix"]
    assert checks["gateway.health"]["status"] == "ok", "from the host everything looks fine"

    code, checks, report = doctor(capsys, healthy, "--fix")
    assert [(f["check"], f["ok"]) for f in report["fixes"]] == [("network.host-gateway", True)]
    assert checks["network.host-gateway"]["status"] == "ok" and code == 0


def test_a_container_stopped(healthy, docker_client, capsys):
    docker_client.containers.get(f"ops-{STACK}-web").stop(timeout=1)
    code, checks, _ = doctor(capsys, healthy)
    assert code == 1
    web = checks["services.container:web"]
    assert web["status"] == "fail"
    assert web["detail"].startswith(f"ops-{STACK}-web is exited (exit code")
    assert f"`ops doctor {healthy.path} --fix` starts it again" in web["fix"]
    assert f"`ops logs {healthy.path} web`" in web["fix"]

    code, checks, report = doctor(capsys, healthy, "--fix")
    assert [(f["check"], f["ok"]) for f in report["fixes"]] == [("services.container:web", True)]
    assert checks["services.container:web"]["status"] == "ok" and code == 0
    assert docker_client.containers.get(f"ops-{STACK}-web").status == "running"


def test_the_gateway_port_taken_by_another_process(healthy, capsys):
    kill_host(healthy)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", healthy.gateway_port))
        squatter.listen()
        code, checks, _ = doctor(capsys, healthy)
    assert code == 1
    ports = checks["network.ports"]
    assert ports["status"] == "fail"
    assert f"gateway: port {healthy.gateway_port} on 127.0.0.1 is held by" in ports["detail"]
    assert f"(pid {os.getpid()}), not this stack" in ports["detail"]
    assert f"(pid {os.getpid()}) or change `gateway.port` in the profile" in ports["fix"]
    assert checks["gateway.host"]["status"] == "fail"


def test_a_volume_removed(healthy, docker_client, capsys):
    docker_client.containers.get(f"ops-{STACK}-web").remove(force=True)
    docker_client.volumes.get(f"ops-{STACK}-data").remove()
    code, checks, _ = doctor(capsys, healthy)
    assert code == 1
    volumes = checks["services.volumes"]
    assert volumes["status"] == "fail"
    assert volumes["detail"] == f"volume ops-{STACK}-data (web:/data) does not exist"
    assert volumes["fix"] == f"`ops up {healthy.path}` creates it, empty: the data it held is gone"
    assert checks["services.container:web"]["detail"] == f"no container ops-{STACK}-web"


def test_docker_unreachable(healthy, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker-here.sock")
    code, checks, _ = doctor(capsys, healthy)
    assert code == 1
    daemon = checks["docker.daemon"]
    assert daemon["status"] == "fail"
    assert (
        daemon["detail"]
        == f"Docker daemon not reachable at unix://{tmp_path}/no-docker-here.sock: no socket there"
    )
    assert "Start the Docker daemon" in daemon["fix"] and "DOCKER_HOST" in daemon["fix"]
    for name in ("docker.run", "docker.disk", "services.container:web", "services.volumes"):
        assert checks[name]["status"] == "skipped", name
        assert checks[name]["detail"] == "depends on docker.daemon, which failed", name
    assert checks["network.host-gateway"]["detail"] == "depends on docker.run, which was skipped"
    assert checks["gateway.models"]["status"] == "ok", "the host side is still checked"


def test_model_folder_deleted(healthy, capsys):
    shutil.rmtree(healthy.model_dir)
    code, checks, _ = doctor(capsys, healthy)
    assert code == 1
    files = checks["models.files"]
    assert files["status"] == "fail"
    assert files["detail"].startswith(f"model tiny: folder {healthy.model_dir} does not exist")
    assert "point `models.tiny.path` at an ONNX Runtime GenAI model folder" in files["fix"]
    assert f"`ops restart {healthy.path} host`" in files["fix"]
    assert checks["host.profile"]["status"] == "ok", "the rest of the stack is still diagnosed"
    assert checks["models.registered"]["detail"] == "depends on models.files, which failed"
    assert checks["gateway.models"]["status"] == "ok"


def test_doctor_never_hangs_when_the_network_is_absent(tmp_path, silent_server, docker_client):
    """A black hole for the catalog, the registry and the package index: every check still answers."""
    black_hole = silent_server
    path = tmp_path / "offnet.yaml"
    path.write_text(
        f"""\
name: offnet-{uuid.uuid4().hex[:6]}
models:
  tiny: {{path: bundled:tiny-fp32}}
  phi: {{catalog: phi-4-mini, optional: true}}
gateway: {{port: {free_port()}}}
services:
  app:
    kind: container
    image: {black_hole}/ops/absent:1
    image_policy: pull
    ports: ["127.0.0.1:{free_port()}:8080"]
"""
    )
    env = {
        **os.environ,
        "OPS_CATALOG_URL": f"https://{black_hole}/asset-gallery/v1.0/models",
        "OPS_CATALOG_TIMEOUT": "1",
        "PIP_INDEX_URL": f"https://{black_hole}/simple/",
    }
    # A subprocess with a deadline: a hang fails this test instead of blocking the suite.
    done = subprocess.run(
        [sys.executable, "-m", "ops", "doctor", "--json", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 1, done.stderr
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    catalog = checks["models.catalog"]
    assert (catalog["status"], catalog["detail"]) == (
        "warn",
        "no answer from the Foundry catalog within 1 s (offline?); phi skipped (optional)",
    )
    registry = checks["network.registry"]
    assert registry["status"] == "fail"
    assert (
        registry["detail"]
        == f"app: {black_hole}/ops/absent:1 cannot be pulled ({black_hole}: no answer within 3 s)"
    )
    assert f"make {black_hole} reachable" in registry["fix"]
    bundle = checks["network.ca-bundle"]
    assert bundle["status"] == "warn"
    assert "127.0.0.1: unreachable: no answer within 3 s" in bundle["detail"]
    assert not any(c["detail"].startswith("timed out after") for c in checks.values())
