"""``ops.network``: the stack network (made once, labelled) and the addresses the gateway binds to."""

from __future__ import annotations

import pytest

from ops import network
from ops.errors import DockerError
from tests.unit.fakedocker import FakeDocker


@pytest.fixture
def client() -> FakeDocker:
    return FakeDocker()


@pytest.fixture
def no_connect(monkeypatch):
    """Fail the test if ``bind_addresses`` tries to reach Docker on its own."""

    def connect(*args, **kwargs):
        raise AssertionError("bind_addresses connected to Docker")

    monkeypatch.setattr("ops.docker_engine.connect", connect)


# --------------------------------------------------------------------------------------------- ensure_network


def test_network_name():
    assert network.network_name("dev") == "ops-dev"


def test_ensure_network_creates_a_labelled_bridge_when_missing(client):
    assert network.ensure_network(client, "dev") == "172.30.0.1"
    assert client.events == [("create-network", "ops-dev")]
    (made,) = client.networks.list(names=["ops-dev"])
    assert made.attrs["Labels"] == {"ops.stack": "dev"}
    assert made.attrs["Driver"] == "bridge"


def test_ensure_network_reuses_the_existing_network_and_its_gateway(client):
    client.networks.create("ops-dev", driver="bridge", gateway="10.9.0.1")  # made by hand: no label
    client.take_events()
    assert network.ensure_network(client, "dev") == "10.9.0.1"
    assert network.ensure_network(client, "dev") == "10.9.0.1"
    assert client.events == []


def test_ensure_network_is_not_fooled_by_a_network_whose_name_contains_the_stacks(client):
    """Docker's name filter matches a part of the name: ``ops-dev`` also finds ``ops-dev-2``."""
    client.networks.create("ops-dev-2", driver="bridge", labels={"ops.stack": "dev-2"})
    client.take_events()
    assert [n.name for n in client.networks.list(names=["ops-dev"])] == ["ops-dev-2"]  # the fake is honest
    assert network.ensure_network(client, "dev") == "172.31.0.1"
    assert client.events == [("create-network", "ops-dev")]


def test_ensure_network_without_a_gateway_says_how_to_fix_it(client):
    client.networks.create("ops-dev", driver="bridge", gateway="")
    with pytest.raises(DockerError) as caught:
        network.ensure_network(client, "dev")
    assert caught.value.message == "network ops-dev has no gateway address"
    assert "docker network rm ops-dev" in caught.value.hint


# --------------------------------------------------------------------------------------------- bind_addresses


def test_stack_gateway_resolves_to_the_networks_gateway(client):
    addresses, notice = network.bind_addresses(("127.0.0.1", "stack-gateway"), "dev", client)
    assert (addresses, notice) == (["127.0.0.1", "172.30.0.1"], None)
    assert client.events == [("create-network", "ops-dev")]
    assert client.networks.get("ops-dev").attrs["Labels"] == {"ops.stack": "dev"}


def test_stack_gateway_of_an_existing_network_creates_nothing(client):
    network.ensure_network(client, "dev")
    client.take_events()
    addresses, notice = network.bind_addresses(("stack-gateway", "127.0.0.1"), "dev", client)
    assert (addresses, notice) == (["172.30.0.1", "127.0.0.1"], None)  # the profile's order
    assert client.events == []


def test_plain_addresses_need_no_docker(no_connect):
    addresses, notice = network.bind_addresses(("127.0.0.1", "0.0.0.0"), "dev")
    assert (addresses, notice) == (["127.0.0.1", "0.0.0.0"], None)


def test_stack_gateway_connects_when_no_client_is_given(monkeypatch, client):
    monkeypatch.setattr("ops.docker_engine.connect", lambda *a, **k: client)
    assert network.bind_addresses(("stack-gateway",), "dev") == (["172.30.0.1"], None)
    assert client.events == [("create-network", "ops-dev")]


def test_docker_unreachable_gives_a_notice_and_falls_back_to_loopback(monkeypatch):
    def connect(*args, **kwargs):
        raise DockerError("Docker daemon not reachable at unix:///var/run/docker.sock: connection refused")

    monkeypatch.setattr("ops.docker_engine.connect", connect)
    addresses, notice = network.bind_addresses(("stack-gateway",), "dev")
    assert addresses == ["127.0.0.1"]
    assert notice == (
        "containers cannot reach the gateway: Docker daemon not reachable at "
        "unix:///var/run/docker.sock: connection refused; it listens on 127.0.0.1 only"
    )


def test_docker_unreachable_keeps_the_other_addresses(monkeypatch):
    def connect(*args, **kwargs):
        raise DockerError("down")

    monkeypatch.setattr("ops.docker_engine.connect", connect)
    addresses, notice = network.bind_addresses(("127.0.0.1", "stack-gateway"), "dev")
    assert addresses == ["127.0.0.1"]
    assert notice == "containers cannot reach the gateway: down; it listens on 127.0.0.1 only"


def test_a_network_without_a_gateway_gives_a_notice(client):
    client.networks.create("ops-dev", driver="bridge", gateway="")
    addresses, notice = network.bind_addresses(("127.0.0.1", "stack-gateway"), "dev", client)
    assert addresses == ["127.0.0.1"]
    assert notice == (
        "containers cannot reach the gateway: network ops-dev has no gateway address; "
        "it listens on 127.0.0.1 only"
    )


def test_duplicates_are_removed_and_order_kept(client):
    binds = ("172.30.0.1", "127.0.0.1", "stack-gateway", "127.0.0.1", "0.0.0.0")
    addresses, notice = network.bind_addresses(binds, "dev", client)
    assert (addresses, notice) == (["172.30.0.1", "127.0.0.1", "0.0.0.0"], None)


def test_nothing_to_bind_means_loopback(no_connect):
    assert network.bind_addresses((), "dev") == (["127.0.0.1"], None)


def test_notice_names_every_address_the_gateway_listens_on(monkeypatch):
    def connect(*args, **kwargs):
        raise DockerError("down")

    monkeypatch.setattr("ops.docker_engine.connect", connect)
    addresses, notice = network.bind_addresses(("stack-gateway", "0.0.0.0"), "dev")
    assert addresses == ["0.0.0.0"]
    assert notice.endswith("it listens on 0.0.0.0 only")


# --------------------------------------------------------------------------------------------- host_reach by engine

DESKTOP_MAC = {
    "OperatingSystem": "Docker Desktop",
    "KernelVersion": "6.10.14-linuxkit",
    "Labels": [
        "com.docker.desktop.address=unix:///Users/ann/Library/Containers/com.docker.docker/Data/docker-cli.sock"
    ],
}


def test_on_docker_desktop_stack_gateway_is_loopback_and_no_network_is_made(client):
    """Desktop forwards host.docker.internal to the host's loopback: nothing beyond 127.0.0.1 is opened."""
    client.info_data.update(DESKTOP_MAC)
    reach = network.host_reach(("127.0.0.1", "stack-gateway"), "dev", client)
    assert reach == network.HostReach(("127.0.0.1",), alias="", notice=None)
    assert client.events == []  # no network made just to find an address the host does not have


def test_on_docker_desktop_a_lan_only_gateway_still_listens_on_loopback_for_containers(client):
    client.info_data.update(DESKTOP_MAC)
    reach = network.host_reach(("192.168.1.20", "stack-gateway"), "dev", client)
    assert reach.addresses == ("192.168.1.20", "127.0.0.1")
    assert reach.alias == ""


def test_on_a_linux_engine_containers_map_the_name_to_the_networks_gateway(client):
    reach = network.host_reach(("127.0.0.1", "stack-gateway"), "dev", client)
    assert reach == network.HostReach(("127.0.0.1", "172.30.0.1"), alias="172.30.0.1", notice=None)


def test_without_stack_gateway_containers_get_no_mapping_and_docker_is_not_asked(no_connect):
    assert network.host_reach(("127.0.0.1",), "dev") == network.HostReach(("127.0.0.1",), "", None)


def test_a_rootless_engine_says_why_containers_cannot_reach_the_gateway(client):
    client.info_data["SecurityOptions"] = ["name=seccomp,profile=builtin", "name=rootless"]
    reach = network.host_reach(("127.0.0.1", "stack-gateway"), "dev", client)
    assert reach.addresses == ("127.0.0.1",)
    assert reach.alias == ""
    assert reach.notice.startswith("containers cannot reach the gateway: rootless Docker Engine")
    assert client.events == []


def test_a_remote_engine_says_its_containers_cannot_reach_this_machine(client, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.1.2.3:2376")
    reach = network.host_reach(("127.0.0.1", "stack-gateway"), "dev", client)
    assert reach.addresses == ("127.0.0.1",)
    assert "on 10.1.2.3 is another machine" in reach.notice


def test_desktop_containers_keep_the_engines_own_host_name():
    from ops.services.spec import ContainerSpec

    spec = ContainerSpec(
        stack="dev", service="web", kind="container", image="x", ports=(), mounts=(), host_gateway=""
    )
    assert spec.create_kwargs()["extra_hosts"] == {}
    linux = ContainerSpec(
        stack="dev",
        service="web",
        kind="container",
        image="x",
        ports=(),
        mounts=(),
        host_gateway="172.30.0.1",
    )
    assert linux.create_kwargs()["extra_hosts"] == {"host.docker.internal": "172.30.0.1"}
    assert spec.spec_hash() != linux.spec_hash()  # moving between engines replaces the container
