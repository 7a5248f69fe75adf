"""A small local HTTP-server image for reconcile tests (built once per machine from the ops base image)."""

from __future__ import annotations

import io

import docker.errors
import pytest

TAG = "ops-test-web:2"
DOCKERFILE = """\
FROM ops-base:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends libpython3.11-stdlib python3-minimal && rm -rf /var/lib/apt/lists/*
RUN mkdir -p /srv /data && echo ok > /srv/health
WORKDIR /srv
CMD ["python3", "-m", "http.server", "8080", "--bind", "0.0.0.0"]
"""


@pytest.fixture(scope="session")
def web_image(docker_client, base_image) -> str:
    """The tag of a tiny image serving /srv on port 8080 (``GET /health`` -> ``ok``)."""
    try:
        docker_client.images.get(TAG)
    except docker.errors.ImageNotFound:
        docker_client.images.build(
            fileobj=io.BytesIO(DOCKERFILE.encode()),
            tag=TAG,
            rm=True,
            timeout=600,
            labels={"ops.test": "image"},
        )
    return TAG


def derived_image(docker_client, tag: str, dockerfile: str) -> str:
    """``tag`` built from ``dockerfile`` (FROM a local image: no network) unless it exists; returns it."""
    try:
        docker_client.images.get(tag)
    except docker.errors.ImageNotFound:
        docker_client.images.build(
            fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, labels={"ops.test": "image"}
        )
    return tag
