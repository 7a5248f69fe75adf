"""`ops up` / `ops down` / `ops status` through the real Docker SDK: reconcile, idempotence, persistence, faults."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from ops.cli import main
from ops.labels import STACK as LABEL_STACK
from tests.integration.hosts import free_port
from tests.integration.webimage import web_image  # noqa: F401  (fixture)

STACK = "recon"


def profile_text(
    web_port: int, api_port: int, gateway_port: int, api_env: str = "one", timeout: int = 60
) -> str:
    return f"""\
name: {STACK}
models:
  tiny: {{path: bundled:tiny-fp32}}
gateway: {{port: {gateway_port}, bind: [127.0.0.1, stack-gateway]}}
services:
  web:
    kind: container
    image: ops-test-web:2
    image_policy: pull
    ports: ["127.0.0.1:{web_port}:8080"]
    volumes: ["data:/data"]
    health: {{http: /health, body: ok, timeout: {timeout}}}
  api:
    kind: container
    image: ops-test-web:2
    image_policy: pull
    ports: ["127.0.0.1:{api_port}:8080"]
    environment: {{SETTING: {api_env}}}
    health: {{http: /health, timeout: {timeout}}}
    depends_on: [web]
volumes:
  data: {{}}
"""


@pytest.fixture
def stack(tmp_path, ops_home, docker_client, web_image):  # noqa: F811
    ports = {"web": free_port(), "api": free_port(), "gateway": free_port()}
    path = tmp_path / f"{STACK}.yaml"

    def write(**kwargs) -> str:
        path.write_text(profile_text(ports["web"], ports["api"], ports["gateway"], **kwargs))
        return str(path)

    write()
    yield write, ports
    main(["down", "--volumes", "--yes", str(path)])
    selector = {"label": f"{LABEL_STACK}={STACK}"}
    assert docker_client.containers.list(all=True, filters=selector) == []


def ids(docker_client) -> dict[str, str]:
    found = docker_client.containers.list(all=True, filters={"label": f"{LABEL_STACK}={STACK}"})
    return {c.labels["ops.service"]: c.id for c in found}


def run(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_up_from_nothing_then_idempotent_then_targeted_replace(stack, docker_client, capsys):
    write, ports = stack
    path = write()
    code, out, err = run(capsys, "up", path)
    assert code == 0, err
    assert "web: create (missing)" in err and "api: create (missing)" in err
    assert "web: ready (GET http://127.0.0.1:" in err
    assert "ready in" in out
    first = ids(docker_client)
    assert set(first) == {"web", "api"}
    container = docker_client.containers.get(first["web"])
    assert container.labels[LABEL_STACK] == STACK and container.labels["ops.spec-hash"]
    assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert container.attrs["HostConfig"]["PortBindings"]["8080/tcp"][0]["HostIp"] == "127.0.0.1"

    code, out, err = run(capsys, "up", path)
    assert code == 0 and "nothing changed" in out
    assert ids(docker_client) == first, "a second up must not touch running, unchanged containers"

    path = write(api_env="two")
    code, out, err = run(capsys, "up", path)
    assert code == 0 and "api: replace (its spec changed)" in err and "web: keep" in err
    after = ids(docker_client)
    assert after["web"] == first["web"] and after["api"] != first["api"]


def test_data_survives_down_and_up_until_down_volumes(stack, docker_client, capsys):
    write, _ = stack
    path = write()
    assert run(capsys, "up", path)[0] == 0
    web = docker_client.containers.get(ids(docker_client)["web"])
    assert web.exec_run(["sh", "-c", "echo kept > /data/proof"]).exit_code == 0
    code, out, _ = run(capsys, "down", path)
    assert code == 0 and "volumes kept" in out
    assert ids(docker_client) == {}
    assert run(capsys, "up", path)[0] == 0
    web = docker_client.containers.get(ids(docker_client)["web"])
    assert web.exec_run(["cat", "/data/proof"]).output.decode().strip() == "kept"
    code, out, _ = run(capsys, "down", "--volumes", "--yes", path)
    assert code == 0 and f"volume ops-{STACK}-data: deleted" in out
    assert docker_client.volumes.list(filters={"label": f"{LABEL_STACK}={STACK}"}) == []


def test_down_volumes_asks_first(stack, capsys, monkeypatch):
    write, _ = stack
    path = write()
    assert run(capsys, "up", path)[0] == 0
    monkeypatch.setattr("typer.confirm", lambda *a, **k: False)
    code, _, err = run(capsys, "down", "--volumes", path)
    assert code == 1 and "nothing deleted" in err


def test_healing_after_container_and_host_die(stack, docker_client, capsys):
    import psutil

    from ops.host.info import HostInfo

    write, _ = stack
    path = write()
    assert run(capsys, "up", path)[0] == 0
    web = docker_client.containers.get(ids(docker_client)["web"])
    web.stop(timeout=1)
    info = HostInfo.read(next(iter(_pid_files())))
    psutil.Process(info.pid).kill()
    code, out, err = run(capsys, "up", path)
    assert code == 0, err
    assert "web: start (it is exited)" in err and "model host started" in err
    assert docker_client.containers.get(ids(docker_client)["web"]).status == "running"


def _pid_files():
    home = os.environ["OPS_HOME"]
    return Path(home).glob(f"stacks/{STACK}/host.pid")


def test_status_json_lists_containers_and_no_secret(stack, capsys):
    write, ports = stack
    path = write()
    assert run(capsys, "up", path)[0] == 0
    code, out, _ = run(capsys, "status", "--json", path)
    assert code == 0
    (status,) = json.loads(out)
    services = {c["service"]: c for c in status["containers"]}
    assert (
        services["web"]["state"] == "running"
        and f"127.0.0.1:{ports['web']}->8080/tcp" in services["web"]["ports"]
    )
    assert status["volumes"] == [f"ops-{STACK}-data"]
    secrets = json.loads(Path(status["secrets_file"]).read_text())
    for value in secrets.values():
        assert value not in out


def test_port_taken_by_another_process_starts_nothing(stack, docker_client, capsys):
    write, ports = stack
    path = write()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", ports["api"]))
        blocker.listen()
        code, _, err = run(capsys, "up", str(path))
    assert code == 6
    assert f"service api: port {ports['api']} on 127.0.0.1 is already in use by" in err
    assert ids(docker_client) == {}


def test_docker_unreachable_is_exit_3(stack, capsys, monkeypatch):
    write, _ = stack
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/no-docker-here.sock")
    code, _, err = run(capsys, "up", write())
    assert code == 3 and "Docker daemon not reachable" in err and "hint:" in err


def test_probe_that_never_passes_times_out_with_logs(stack, docker_client, capsys):
    write, ports = stack
    path = Path(write(timeout=3))
    path.write_text(
        path.read_text().replace("health: {http: /health, timeout: 3}", "health: {http: /never, timeout: 3}")
    )
    code, _, err = run(capsys, "up", str(path))
    assert code == 5
    assert f"GET http://127.0.0.1:{ports['api']}/never: not ready after 3 s (last answer: HTTP 404" in err
    assert "last " in err and "log lines" in err and "GET /never" in err  # the container's own log
    assert "hint:" in err
    assert docker_client.containers.get(ids(docker_client)["web"]).status == "running", (
        "nothing else torn down"
    )


def test_image_neither_pulled_nor_built(stack, capsys):
    write, _ = stack
    path = Path(write())
    path.write_text(path.read_text().replace("image: ops-test-web:2", "image: registry.invalid/none:1", 1))
    code, _, err = run(capsys, "up", str(path))
    assert code == 3 and "registry.invalid/none:1" in err and "hint:" in err


def test_two_ups_at_once_are_serialised(stack, docker_client, ops_home):
    import subprocess
    import sys

    write, _ = stack
    path = write()
    env = {**os.environ, "OPS_HOME": str(ops_home)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "ops", "up", path], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1].decode()[-800:] for r in results]
    assert sorted(ids(docker_client)) == ["api", "web"], "one container per service, not two"
    outputs = [r[0].decode() for r in results]
    assert sum("nothing changed" in out for out in outputs) == 1, (
        "the second waited for the first, then found it done"
    )


def test_logs_of_a_service_and_of_the_host(stack, capsys):
    write, _ = stack
    path = write()
    assert run(capsys, "up", path)[0] == 0
    code, out, _ = run(capsys, "logs", path, "web", "--tail", "5")
    assert code == 0 and "GET /health" in out  # the container's own access log: the probe's requests
    code, out, _ = run(capsys, "logs", path, "host")
    assert code == 0 and "gateway for stack recon on 127.0.0.1" in out
    code, _, err = run(capsys, "logs", path, "nope")
    assert code == 2 and "no running service 'nope'" in err and "services: host, api, web" in err
