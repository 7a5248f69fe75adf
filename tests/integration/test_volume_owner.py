"""A service whose image runs as its own user gets its existing volumes, made when it ran as root."""

from __future__ import annotations

import pytest

from ops.cli import main
from ops.labels import STACK as LABEL_STACK
from tests.integration.hosts import free_port
from tests.integration.webimage import derived_image, web_image  # noqa: F401  (fixture)

STACK = "owner"
IMAGE = "ops-test-web-user:1"
VOLUME = f"ops-{STACK}-data"


@pytest.fixture
def user_image(docker_client, web_image):  # noqa: F811
    """The web image, run as uid 10001 (as the Open WebUI and Chainlit images are)."""
    dockerfile = f"FROM {web_image}\nRUN mkdir -p /data && chown 10001:10001 /data\nUSER 10001:10001\n"
    return derived_image(docker_client, IMAGE, dockerfile)


def test_a_root_owned_volume_is_given_to_the_images_user(
    tmp_path, ops_home, docker_client, user_image, capsys
):
    # What an older image, run as root, left in the stack's volume.
    docker_client.volumes.create(VOLUME, labels={LABEL_STACK: STACK, "ops.volume": VOLUME})
    docker_client.containers.run(
        user_image,
        ["sh", "-c", "mkdir -p /data/sub && echo old > /data/sub/chat.db"],
        user="0",
        volumes={VOLUME: {"bind": "/data", "mode": "rw"}},
        remove=True,
    )
    path = tmp_path / f"{STACK}.yaml"
    path.write_text(
        f"""\
name: {STACK}
models:
  tiny: {{path: bundled:tiny-fp32}}
gateway: {{port: {free_port()}, bind: [127.0.0.1, stack-gateway]}}
services:
  web:
    kind: container
    image: {user_image}
    image_policy: pull
    ports: ["127.0.0.1:{free_port()}:8080"]
    volumes: ["data:/data"]
    health: {{http: /health, timeout: 60}}
volumes:
  data: {{}}
"""
    )
    try:
        assert main(["up", str(path)]) == 0, capsys.readouterr().err
        assert f"volume {VOLUME} given to user 10001 (2 files were another user's)" in capsys.readouterr().err
        container = docker_client.containers.get(f"ops-{STACK}-web")
        result = container.exec_run(
            ["sh", "-c", "id -u && echo new >> /data/sub/chat.db && cat /data/sub/chat.db"]
        )
        assert result.exit_code == 0 and result.output.decode().split() == ["10001", "old", "new"]
        # Once given, a later replace finds nothing to change and says nothing.
        container.remove(force=True)
        assert main(["up", str(path)]) == 0
        assert "given to user" not in capsys.readouterr().err
    finally:
        main(["down", "--volumes", "--yes", str(path)])
    assert docker_client.volumes.list(filters={"label": f"{LABEL_STACK}={STACK}"}) == []
