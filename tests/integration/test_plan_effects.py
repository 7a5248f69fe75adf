"""What the resolved plan promises, against a real Docker daemon and a real model host.

A service keeps its data across a replace without a `volumes:` entry (at its kind's data path,
and at every VOLUME its image declares); the profile's volume labels reach Docker;
`build.dockerfile` picks the file that is built; and `ops up` asks the Foundry catalog once.
"""

from __future__ import annotations

import socket
import threading

import pytest

from ops import services
from ops.cli import main
from ops.labels import STACK as LABEL_STACK
from ops.services import ServiceKind
from tests.integration.hosts import free_port
from tests.integration.webimage import derived_image, web_image  # noqa: F401  (fixture)

STACK = "planfx"
VOLUME_IMAGE = "ops-test-web-volume:1"


@pytest.fixture
def data_kind():
    """A kind registered the way a plug-in would, with a data path and no other defaults."""
    kind = services.register(
        ServiceKind(name="test-datastore", description="test kind with data", data_path="/data", port=8080)
    )
    yield kind
    services._KINDS.pop(kind.name, None)


@pytest.fixture
def volume_image(docker_client, web_image):  # noqa: F811
    """The web image plus a declared `VOLUME /state` (built locally, no network)."""
    return derived_image(
        docker_client, VOLUME_IMAGE, f"FROM {web_image}\nRUN mkdir -p /state\nVOLUME /state\n"
    )


@pytest.fixture
def stack(tmp_path, ops_home, docker_client, data_kind, volume_image):
    path = tmp_path / f"{STACK}.yaml"
    ports = {"store": free_port(), "vol": free_port(), "alt": free_port(), "gateway": free_port()}
    alt = tmp_path / "alt"
    alt.mkdir()
    (alt / "Dockerfile.alt").write_text(
        f"FROM {volume_image}\nRUN echo from-the-alt-dockerfile > /srv/which\n"
    )
    (alt / "Dockerfile").write_text(f"FROM {volume_image}\nRUN echo from-the-default > /srv/which\n")

    def write(setting: str = "one") -> str:
        path.write_text(
            f"""\
name: {STACK}
models:
  tiny: {{path: bundled:tiny-fp32}}
gateway: {{port: {ports["gateway"]}, bind: [127.0.0.1, stack-gateway]}}
services:
  store:
    kind: test-datastore
    image: {volume_image}
    image_policy: pull
    ports: ["127.0.0.1:{ports["store"]}:8080"]
    environment: {{SETTING: {setting}}}
    health: {{http: /health, timeout: 60}}
  vol:
    kind: container
    image: {volume_image}
    image_policy: pull
    ports: ["127.0.0.1:{ports["vol"]}:8080"]
    environment: {{SETTING: {setting}}}
    volumes: ["shared:/shared"]
    health: {{http: /health, timeout: 60}}
  alt:
    kind: container
    build: {{context: alt, dockerfile: Dockerfile.alt}}
    image_policy: build
    ports: ["127.0.0.1:{ports["alt"]}:8080"]
    health: {{http: /which, body: alt-dockerfile, timeout: 60}}
volumes:
  shared: {{labels: {{course: intro-2026}}}}
"""
        )
        return str(path)

    write()
    yield write, ports
    main(["down", "--volumes", "--yes", str(path)])
    assert docker_client.containers.list(all=True, filters={"label": f"{LABEL_STACK}={STACK}"}) == []
    assert docker_client.volumes.list(filters={"label": f"{LABEL_STACK}={STACK}"}) == []


def container(docker_client, service: str):
    return docker_client.containers.get(f"ops-{STACK}-{service}")


def shell(docker_client, service: str, command: str) -> str:
    result = container(docker_client, service).exec_run(["sh", "-c", command])
    return result.output.decode().strip()


def test_data_survives_a_replace_without_a_volumes_entry(stack, docker_client, capsys):
    write, _ports = stack
    assert main(["up", write()]) == 0, capsys.readouterr().err
    # The kind's data path and the image's declared VOLUME each got a named, labelled volume.
    store_mounts = {m["Destination"]: m for m in container(docker_client, "store").attrs["Mounts"]}
    assert store_mounts["/data"]["Name"] == f"ops-{STACK}-store-data"
    assert store_mounts["/state"]["Name"] == f"ops-{STACK}-store-state"
    vol_mounts = {m["Destination"]: m for m in container(docker_client, "vol").attrs["Mounts"]}
    assert vol_mounts["/state"]["Name"] == f"ops-{STACK}-vol-state"
    for name in (f"ops-{STACK}-store-data", f"ops-{STACK}-store-state", f"ops-{STACK}-vol-state"):
        assert docker_client.volumes.get(name).attrs["Labels"][LABEL_STACK] == STACK
    shell(docker_client, "store", "echo kept > /data/note && echo kept > /state/note")
    shell(docker_client, "vol", "echo kept > /state/note")
    before = {s: container(docker_client, s).id for s in ("store", "vol")}

    assert main(["up", write(setting="two")]) == 0, capsys.readouterr().err  # a changed spec: replaced
    assert all(container(docker_client, s).id != before[s] for s in before)
    assert shell(docker_client, "store", "cat /data/note /state/note") == "kept\nkept"
    assert shell(docker_client, "vol", "cat /state/note") == "kept"

    # `ops down` without --volumes keeps them too.
    assert main(["down", write(setting="two")]) == 0
    assert main(["up", write(setting="two")]) == 0, capsys.readouterr().err
    assert shell(docker_client, "store", "cat /data/note") == "kept"


def test_profile_volume_labels_and_the_chosen_dockerfile_reach_docker(stack, docker_client, capsys):
    write, ports = stack
    assert main(["up", write()]) == 0, capsys.readouterr().err
    shared = docker_client.volumes.get(f"ops-{STACK}-shared")
    assert shared.attrs["Labels"]["course"] == "intro-2026" and shared.attrs["Labels"][LABEL_STACK] == STACK
    import httpx

    assert httpx.get(f"http://127.0.0.1:{ports['alt']}/which").text.strip() == "from-the-alt-dockerfile"


class CountingBlackHole:
    """A catalog that accepts connections, counts them and hangs up at once (so it counts as offline)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.count = 0
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/asset-gallery/v1.0/models"

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.count += 1
            conn.close()


def test_up_asks_the_catalog_once(tmp_path, ops_home, monkeypatch, capsys):
    catalog = CountingBlackHole()
    monkeypatch.setenv("OPS_CATALOG_URL", catalog.url)
    path = tmp_path / "catalog-once.yaml"
    path.write_text(
        "models:\n"
        "  tiny: {path: bundled:tiny-fp32}\n"
        "  big: {catalog: phi-4-mini, optional: true}\n"
        f"gateway: {{port: {free_port()}, bind: [127.0.0.1]}}\n"
    )
    try:
        assert main(["up", str(path)]) == 0, capsys.readouterr().err
        out = capsys.readouterr().err
        assert "model big: skipped" in out
        # The parent asked; the host it started got the answer with its configuration.
        assert catalog.count == 1
    finally:
        main(["down", str(path)])
        catalog.sock.close()
