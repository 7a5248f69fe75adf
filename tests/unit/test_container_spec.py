"""``ContainerSpec``: the hash that decides replacement, the arguments handed to Docker, and the probe."""

from __future__ import annotations

import dataclasses

import pytest
from docker.types import Mount as DockerMount

from ops.probes import ContainerProbe, HttpProbe, TcpProbe
from ops.profiles import HealthSpec, PortMapping, load_path
from ops.secrets import Secret
from ops.services.spec import ContainerSpec, Mount

IMAGE_ID = "sha256:" + "a" * 64
WEBUI = PortMapping("127.0.0.1", 3000, 8080)


def make_spec(**fields) -> ContainerSpec:
    values = {
        "stack": "dev",
        "service": "webui",
        "kind": "open-webui",
        "image": "ghcr.io/open-webui/open-webui:main",
        "ports": (WEBUI,),
        "mounts": (Mount("volume", "ops-dev-data", "/app/backend/data"),),
        "environment": {"OPENAI_API_BASE_URL": "http://host.docker.internal:8000/v1", "MODE": "x"},
        "image_id": IMAGE_ID,
        "host_gateway": "172.30.0.1",
        "health_path": "/health",  # open-webui's, as the stack plan resolves it
    }
    values.update(fields)
    return ContainerSpec(**values)


# --------------------------------------------------------------------------------------------- spec_hash


def test_spec_hash_is_a_stable_16_hex_digest_of_equal_specs():
    first, second = make_spec(), make_spec()
    assert first.spec_hash() == second.spec_hash()
    assert len(first.spec_hash()) == 16
    int(first.spec_hash(), 16)
    assert first.spec_hash() == first.spec_hash()


def test_spec_hash_ignores_environment_insertion_order():
    forward = make_spec(environment={"A": "1", "B": "2", "KEY": Secret("value-123")})
    backward = make_spec(environment={"KEY": Secret("value-123"), "B": "2", "A": "1"})
    assert forward.spec_hash() == backward.spec_hash()


@pytest.mark.parametrize(
    "change",
    [
        {"image_id": "sha256:" + "b" * 64},
        {"image": "ghcr.io/open-webui/open-webui:v1"},
        {"ports": (PortMapping("127.0.0.1", 3001, 8080),)},
        {"ports": (PortMapping("0.0.0.0", 3000, 8080),)},
        {"ports": (PortMapping("127.0.0.1", 3000, 8080, "udp"),)},
        {"ports": (WEBUI, PortMapping("127.0.0.1", 3002, 9090))},
        {"mounts": (Mount("volume", "ops-dev-other", "/app/backend/data"),)},
        {"mounts": (Mount("volume", "ops-dev-data", "/data"),)},
        {"mounts": (Mount("volume", "ops-dev-data", "/app/backend/data", read_only=True),)},
        {"mounts": (Mount("bind", "ops-dev-data", "/app/backend/data"),)},
        {"environment": {"OPENAI_API_BASE_URL": "http://host.docker.internal:8000/v1", "MODE": "y"}},
        {"environment": {"OPENAI_API_BASE_URL": "http://host.docker.internal:8000/v1"}},
        {"host_gateway": "172.31.0.1"},
        {"stack": "prod"},  # another network
        {"memory_bytes": 2 * 1024**3},
        {"pids": 256},
        {"cap_add": ("NET_BIND_SERVICE",)},
    ],
    ids=[
        "image-id",
        "image-tag",
        "host-port",
        "host-ip",
        "protocol",
        "extra-port",
        "volume",
        "mount-target",
        "read-only",
        "mount-kind",
        "env-value",
        "env-removed",
        "host-gateway",
        "network",
        "memory",
        "pids",
        "cap-add",
    ],
)
def test_spec_hash_changes_with_what_decides_the_container(change):
    assert make_spec(**change).spec_hash() != make_spec().spec_hash()


def test_spec_hash_changes_with_a_secret_value_but_not_with_a_new_secret_object():
    one = make_spec(environment={"WEBUI_SECRET_KEY": Secret("first-secret")})
    same = make_spec(environment={"WEBUI_SECRET_KEY": Secret("first-secret")})
    other = make_spec(environment={"WEBUI_SECRET_KEY": Secret("second-secret")})
    assert one.spec_hash() == same.spec_hash()
    assert one.spec_hash() != other.spec_hash()


def test_spec_hash_ignores_what_does_not_decide_the_container():
    base = make_spec()
    assert make_spec(depends_on=("db",)).spec_hash() == base.spec_hash()
    assert make_spec(health=HealthSpec(http="/ready", timeout=5)).spec_hash() == base.spec_hash()


def test_labels_name_stack_service_and_hash():
    spec = make_spec()
    assert spec.labels() == {"ops.stack": "dev", "ops.service": "webui", "ops.spec-hash": spec.spec_hash()}
    assert spec.name == "ops-dev-webui"
    assert spec.network == "ops-dev"


# --------------------------------------------------------------------------------------------- create_kwargs


def test_create_kwargs():
    secret = Secret("s3cr3t-value-xyz")
    spec = make_spec(
        ports=(WEBUI, PortMapping("0.0.0.0", 3443, 8080), PortMapping("127.0.0.1", 5353, 53, "udp")),
        mounts=(
            Mount("volume", "ops-dev-data", "/app/backend/data"),
            Mount("bind", "/srv/docs", "/docs", read_only=True),
        ),
        environment={"WEBUI_SECRET_KEY": secret, "PORT": "8080"},
    )
    kwargs = spec.create_kwargs()
    assert kwargs["image"] == IMAGE_ID
    assert kwargs["name"] == "ops-dev-webui"
    assert kwargs["detach"] is True
    assert kwargs["hostname"] == "webui"
    assert kwargs["network"] == "ops-dev"
    assert kwargs["ports"] == {
        "8080/tcp": [("127.0.0.1", 3000), ("0.0.0.0", 3443)],
        "53/udp": [("127.0.0.1", 5353)],
    }
    assert kwargs["labels"] == {"ops.stack": "dev", "ops.service": "webui", "ops.spec-hash": spec.spec_hash()}
    assert kwargs["environment"] == {"WEBUI_SECRET_KEY": "s3cr3t-value-xyz", "PORT": "8080"}
    assert kwargs["extra_hosts"] == {"host.docker.internal": "172.30.0.1"}
    assert kwargs["restart_policy"] == {"Name": "unless-stopped"}
    assert kwargs["mounts"] == [
        DockerMount(target="/app/backend/data", source="ops-dev-data", type="volume", read_only=False),
        DockerMount(target="/docs", source="/srv/docs", type="bind", read_only=True),
    ]
    # the secret is revealed only in the environment handed to Docker
    without_env = {k: v for k, v in kwargs.items() if k != "environment"}
    assert "s3cr3t-value-xyz" not in repr(without_env)
    assert "s3cr3t-value-xyz" not in repr(spec)


def test_create_kwargs_harden_every_container():
    """No capability but those given back, no setuid gains, memory and pids limits, a rotated log."""
    kwargs = make_spec().create_kwargs()
    assert kwargs["cap_drop"] == ["ALL"] and kwargs["cap_add"] == []
    assert kwargs["security_opt"] == ["no-new-privileges:true"]
    assert kwargs["mem_limit"] == kwargs["memswap_limit"] == 4 * 1024**3
    assert kwargs["pids_limit"] == 1024
    log = kwargs["log_config"]
    assert log["Type"] == "json-file" and log["Config"] == {"max-size": "10m", "max-file": "3"}
    given = make_spec(memory_bytes=512 * 1024**2, pids=64, cap_add=("NET_BIND_SERVICE",)).create_kwargs()
    assert given["mem_limit"] == given["memswap_limit"] == 512 * 1024**2
    assert given["pids_limit"] == 64 and given["cap_add"] == ["NET_BIND_SERVICE"]


def test_create_kwargs_falls_back_to_the_tag_without_an_image_id():
    assert make_spec(image_id="").create_kwargs()["image"] == "ghcr.io/open-webui/open-webui:main"


def test_create_kwargs_default_host_gateway_is_dockers():
    spec = dataclasses.replace(make_spec(), host_gateway="host-gateway")
    assert spec.create_kwargs()["extra_hosts"] == {"host.docker.internal": "host-gateway"}
    assert ContainerSpec("dev", "x", "container", "img", (), ()).host_gateway == "host-gateway"


def test_create_kwargs_with_nothing_published():
    kwargs = make_spec(ports=(), mounts=(), environment={}).create_kwargs()
    assert kwargs["ports"] == {}
    assert kwargs["mounts"] == []
    assert kwargs["environment"] == {}


# --------------------------------------------------------------------------------------------- probe


def test_probe_is_the_health_path_on_the_first_published_port():
    spec = make_spec(ports=(WEBUI, PortMapping("127.0.0.1", 3443, 8443)))
    assert spec.probe() == HttpProbe("http://127.0.0.1:3000/health", status=200, body=None)


def test_probe_follows_the_profiles_health_port_status_and_body():
    spec = make_spec(
        ports=(WEBUI, PortMapping("127.0.0.1", 9091, 9090)),
        health=HealthSpec(http="/ready", port=9090, status=204, body="ok"),
        health_path="/ready",
    )
    assert spec.probe() == HttpProbe("http://127.0.0.1:9091/ready", status=204, body="ok")


def test_probe_tcp_on_the_health_port():
    spec = make_spec(
        ports=(WEBUI, PortMapping("127.0.0.1", 5433, 5432)), health=HealthSpec(tcp=True, port=5432)
    )
    assert spec.probe() == TcpProbe("127.0.0.1", 5433)


def test_probe_tcp_wins_over_the_health_path():
    spec = make_spec(health=HealthSpec(tcp=True))
    assert spec.probe() == TcpProbe("127.0.0.1", 3000)


def test_probe_of_a_port_published_on_every_address_asks_loopback():
    spec = make_spec(ports=(PortMapping("0.0.0.0", 3000, 8080),))
    assert spec.probe() == HttpProbe("http://127.0.0.1:3000/health")
    tcp = make_spec(ports=(PortMapping("0.0.0.0", 5433, 5432),), health=HealthSpec(tcp=True))
    assert tcp.probe() == TcpProbe("127.0.0.1", 5433)


def test_probe_of_a_port_on_another_address_asks_that_address():
    spec = make_spec(ports=(PortMapping("192.168.1.5", 3000, 8080),))
    assert spec.probe().target == "GET http://192.168.1.5:3000/health"


def test_probe_without_a_published_port_watches_the_container():
    container = object()
    probe = make_spec(ports=()).probe(container)
    assert isinstance(probe, ContainerProbe)
    assert probe.container is container
    assert make_spec(ports=(), health=HealthSpec(tcp=True)).probe(container) == ContainerProbe(container)


def test_probe_without_a_health_path_watches_the_container():
    container = object()
    assert make_spec(kind="container", health_path=None).probe(container) == ContainerProbe(container)


def test_probe_on_a_health_port_that_is_not_published_watches_the_container():
    container = object()
    spec = make_spec(health=HealthSpec(http="/x", port=9999), health_path="/x")
    assert spec.probe(container) == ContainerProbe(container)


PROFILE = """\
models:
  tiny:
    path: bundled:tiny-fp32
services:
  webui:
    kind: open-webui
  tuned:
    kind: open-webui
    ports: ["0.0.0.0:3001:8080"]
    health: {http: /ready, status: 204, body: ok, timeout: 12.5}
  plain:
    kind: container
    image: busybox:1
    ports: ["8081:80"]
  tcp:
    kind: container
    image: postgres:16
    ports: ["5433:5432"]
    health: {tcp: true}
"""


def test_probes_of_a_resolved_profile(tmp_path):
    """The stack plan gives the spec its health path: the profile's ``health.http``, else the kind's."""
    from ops import plan

    (tmp_path / "dev.yaml").write_text(PROFILE)
    resolved = plan.resolve(load_path(tmp_path / "dev.yaml"), ask_catalog=False)
    container = object()
    probes = {
        name: service.container(None, "img", IMAGE_ID, "172.30.0.1").probe(container)
        for name, service in resolved.services.items()
    }
    assert probes == {
        "webui": HttpProbe("http://127.0.0.1:3000/health"),
        "tuned": HttpProbe("http://127.0.0.1:3001/ready", status=204, body="ok"),
        "plain": ContainerProbe(container),
        "tcp": TcpProbe("127.0.0.1", 5433),
    }
    timeouts = {name: s.container(None).timeout for name, s in resolved.services.items()}
    assert timeouts == {"webui": 300, "tuned": 12.5, "plain": 300, "tcp": 300}


# --------------------------------------------------------------------------------------------- url, timeout


def test_url_is_the_first_published_port():
    assert make_spec().url == "http://127.0.0.1:3000"
    assert make_spec(ports=(PortMapping("0.0.0.0", 8501, 8000), WEBUI)).url == "http://127.0.0.1:8501"
    assert make_spec(ports=()).url == ""


def test_timeout_is_the_profiles_else_300_s():
    assert make_spec().timeout == 300.0
    assert make_spec(health=HealthSpec(http="/health", timeout=12.5)).timeout == 12.5
