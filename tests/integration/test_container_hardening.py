"""Every container `ops up` makes: no capability but those given back, no setuid gains, memory and
process limits from the profile (or their defaults), and a rotated log. Read back from Docker and
from inside the container (its effective capabilities, `NoNewPrivs`, its cgroup's limits)."""

from __future__ import annotations

import pytest

from ops.cli import main
from ops.labels import STACK as LABEL_STACK
from tests.integration.hosts import free_port
from tests.integration.webimage import web_image  # noqa: F401  (fixture)

STACK = "capdrop"
NET_BIND_SERVICE = 1 << 10


@pytest.fixture
def stack(tmp_path, ops_home, docker_client, web_image):  # noqa: F811
    path = tmp_path / f"{STACK}.yaml"
    path.write_text(
        f"""\
name: {STACK}
models:
  tiny: {{path: bundled:tiny-fp32}}
gateway: {{port: {free_port()}, bind: [127.0.0.1]}}
services:
  plain:
    kind: container
    image: ops-test-web:2
    image_policy: pull
    ports: ["127.0.0.1:{free_port()}:8080"]
    health: {{http: /health, timeout: 60}}
  limited:
    kind: container
    image: ops-test-web:2
    image_policy: pull
    ports: ["127.0.0.1:{free_port()}:8080"]
    health: {{http: /health, timeout: 60}}
    resources: {{memory: 256m, pids: 64}}
    cap_add: [NET_BIND_SERVICE]
"""
    )
    yield str(path)
    main(["down", "--volumes", "--yes", str(path)])
    assert docker_client.containers.list(all=True, filters={"label": f"{LABEL_STACK}={STACK}"}) == []


def inside(container, command: str) -> str:
    code, output = container.exec_run(["sh", "-c", command])
    assert code == 0, output
    return output.decode().strip()


def status_field(container, name: str) -> str:
    return inside(container, f"grep '^{name}:' /proc/1/status").split()[1]


def cgroup_value(container, v2: str, v1: str) -> str:
    return inside(container, f"cat /sys/fs/cgroup/{v2} 2>/dev/null || cat /sys/fs/cgroup/{v1}")


def test_containers_are_hardened_and_limited(stack, docker_client, capsys):
    assert main(["up", stack]) == 0, capsys.readouterr().err
    found = {
        c.labels["ops.service"]: c
        for c in docker_client.containers.list(filters={"label": f"{LABEL_STACK}={STACK}"})
    }
    plain, limited = found["plain"], found["limited"]
    for container in (plain, limited):
        host = container.attrs["HostConfig"]
        assert host["CapDrop"] == ["ALL"]
        assert "no-new-privileges:true" in host["SecurityOpt"]
        assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "10m"}}
        assert status_field(container, "NoNewPrivs") == "1"
    # The defaults: 4 GiB (no swap on top), 1024 processes; nothing given back.
    assert plain.attrs["HostConfig"]["Memory"] == plain.attrs["HostConfig"]["MemorySwap"] == 4 * 1024**3
    assert plain.attrs["HostConfig"]["PidsLimit"] == 1024
    assert int(status_field(plain, "CapEff"), 16) == 0
    # The profile's: what it asked for, and only that capability.
    assert limited.attrs["HostConfig"]["Memory"] == 256 * 1024**2
    assert limited.attrs["HostConfig"]["CapAdd"] == ["NET_BIND_SERVICE"] or limited.attrs["HostConfig"][
        "CapAdd"
    ] == ["CAP_NET_BIND_SERVICE"]
    assert int(status_field(limited, "CapEff"), 16) == NET_BIND_SERVICE
    assert cgroup_value(limited, "pids.max", "pids/pids.max") == "64"
    assert cgroup_value(limited, "memory.max", "memory/memory.limit_in_bytes") == str(256 * 1024**2)
    # A second `up` keeps them: the limits are part of the spec hash, and unchanged.
    capsys.readouterr()
    assert main(["up", stack]) == 0
    assert "nothing changed" in capsys.readouterr().out
