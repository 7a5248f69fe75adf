"""Fixtures for tests that need a real Docker daemon.

``tests/conftest.py`` defines ``require``, but a nested ``conftest.py`` cannot import it
reliably (both are top-level modules named ``conftest``), so the gate is repeated here.
"""

from __future__ import annotations

import os

import docker
import pytest

from ops.docker_engine import connect
from ops.errors import DockerError
from ops.images.base import BASE_IMAGE, ensure_base_image

TEST_LABEL = "ops.test"


def _missing(what: str) -> None:
    """Fail in CI (``OPS_CI=1``), skip elsewhere: the same rule as ``tests/conftest.require``."""
    if os.environ.get("OPS_CI") == "1":
        pytest.fail(f"{what} is required in CI and is missing")
    pytest.skip(f"{what} not available on this machine")


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    """A client for the real daemon; `.ci/ensure-docker` starts one on CI machines."""
    try:
        client = connect()
    except DockerError as exc:
        _missing(f"a Docker daemon ({exc}; {exc.hint})")
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    """The ops base image, made once per machine (debootstrap takes about 25 s)."""
    try:
        return ensure_base_image(docker_client, BASE_IMAGE)
    except DockerError as exc:
        _missing(f"the base image {BASE_IMAGE} ({exc}; {exc.hint})")


@pytest.fixture
def cleanup_by_label(docker_client):
    """Remove every container and image labelled ``ops.test=true`` after the test."""
    yield {TEST_LABEL: "true"}
    selector = {"label": f"{TEST_LABEL}=true"}
    for container in docker_client.containers.list(all=True, filters=selector):
        container.remove(force=True)
    for image in docker_client.images.list(filters=selector):
        docker_client.images.remove(image.id, force=True)
