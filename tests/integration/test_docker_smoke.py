"""The real Docker daemon answers, and images built on the ops base image run."""

from __future__ import annotations

import io
import uuid

from ops.docker_engine import engine_info


def test_daemon_answers_through_the_sdk(docker_client):
    assert docker_client.ping() is True
    info = engine_info(docker_client)
    assert info.server_version and info.server_version != "unknown"
    assert info.api_version.startswith("1.")
    assert info.storage_driver != "unknown"


def test_image_built_on_the_base_image_runs(docker_client, base_image, cleanup_by_label):
    assert docker_client.images.get(base_image).labels.get("ops.managed") == "true"
    tag = f"ops-test-hello:{uuid.uuid4().hex[:12]}"
    dockerfile = f"FROM {base_image}\nRUN echo hello > /hello\n"
    # The build answers only after RUN has finished, so give it more than connect()'s 5 s.
    image, _log = docker_client.images.build(
        fileobj=io.BytesIO(dockerfile.encode()), tag=tag, labels=cleanup_by_label, rm=True, timeout=300
    )
    assert image.labels.get("ops.test") == "true"

    container = docker_client.containers.run(tag, ["cat", "/hello"], labels=cleanup_by_label, detach=True)
    result = container.wait(timeout=60)
    assert result["StatusCode"] == 0
    assert container.logs().decode() == "hello\n"
