"""Fixtures for the e2e tier: Debian's Chromium through Playwright, and the WebGPU demo served
from its real container (and from ``serve.py`` on the host).

Everything here is package-scoped: the image is built once for all e2e tests, and the browser
and the container are gone before the integration tier (whose cleanup removes every
``ops.test=true`` container) starts. The image and containers are removed by label afterwards.

A missing browser or daemon fails in CI and skips elsewhere (``tests.conftest.missing``).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from docker.errors import DockerException, NotFound

from ops.bench.webgpu import assemble_site, serve_site
from ops.docker_engine import connect
from ops.errors import DockerError, OpsError
from ops.images.base import BASE_IMAGE, ensure_base_image
from ops.runtime.browser import find_chromium, launch_chromium
from tests.conftest import missing
from tests.e2e.containers import TEST_LABELS, remove_by_label, start_demo_container

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "stacks" / "webgpu-demo"
ARTIFACTS = ROOT / "artifacts"
IMAGE_TAG = "ops-webgpu-demo:test"


@pytest.fixture(scope="package")
def chromium() -> Path:
    """Debian's Chromium (``.ci/ensure-chromium`` installs it); never a downloaded browser."""
    path = find_chromium()
    if path is None:
        missing("Chromium at /usr/bin/chromium (bash .ci/ensure-chromium)")
    return path


@pytest.fixture(scope="package")
def playwright_api():
    """Playwright's driver, started once; it launches the Debian Chromium, never its own."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright's Python package (pip install playwright==1.65.2)")
    with sync_playwright() as api:
        yield api


@pytest.fixture(scope="package")
def browser_webgpu(playwright_api, chromium):
    """Chromium with ``--enable-unsafe-webgpu``: WebGPU through its software adapter."""
    browser = launch_chromium(playwright_api, webgpu=True, executable=chromium)
    yield browser
    browser.close()


@pytest.fixture(scope="package")
def browser_plain(playwright_api, chromium):
    """Chromium without the WebGPU flag: ``requestAdapter()`` gives null, the page must use wasm."""
    browser = launch_chromium(playwright_api, webgpu=False, executable=chromium)
    yield browser
    browser.close()


@pytest.fixture(scope="package")
def demo_context(tmp_path_factory) -> Path:
    """The assembled build context: recipe plus onnxruntime-web from the npm registry (cached)."""
    out = tmp_path_factory.mktemp("webgpu-demo") / "webgpu-demo"
    try:
        assemble_site(out)
    except OpsError as exc:
        missing(f"the assembled WebGPU demo ({exc}; {exc.hint})")
    return out


@pytest.fixture(scope="package")
def samples() -> list[dict]:
    """The known digits committed beside the model: pixels 0..255, label, reference logits."""
    return json.loads((RECIPE / "site" / "model" / "samples.json").read_text())["samples"]


@pytest.fixture(scope="package")
def docker_client():
    """A client for the real daemon; `.ci/ensure-docker` starts one on CI machines."""
    try:
        client = connect(timeout=30)
    except DockerError as exc:
        missing(f"a Docker daemon ({exc}; {exc.hint})")
    yield client
    client.close()


@pytest.fixture(scope="package")
def demo_image(docker_client, demo_context) -> str:
    """``ops-webgpu-demo:test`` built through the Docker SDK from the assembled context."""
    try:
        base = ensure_base_image(docker_client, BASE_IMAGE)
    except DockerError as exc:
        missing(f"the base image {BASE_IMAGE} ({exc}; {exc.hint})")
    try:
        docker_client.images.build(
            path=str(demo_context),
            tag=IMAGE_TAG,
            buildargs={"BASE": base},
            labels=TEST_LABELS,
            rm=True,
            forcerm=True,
            # The build answers only after apt has installed python3: far more than 30 s may pass.
            timeout=600,
        )
    except DockerException as exc:
        log = "\n".join(str(line.get("stream", line)).rstrip() for line in getattr(exc, "build_log", []))
        pytest.fail(f"building {IMAGE_TAG} failed: {exc}\n{log[-3000:]}")
    yield IMAGE_TAG
    remove_by_label(docker_client)


@pytest.fixture(scope="package")
def demo_container(docker_client, demo_image):
    """The demo's container, healthy, and its URL on 127.0.0.1."""
    container, url = start_demo_container(docker_client, demo_image)
    yield container, url
    with contextlib.suppress(NotFound):
        container.remove(force=True)


@pytest.fixture(scope="package")
def demo_url(demo_container) -> str:
    """Base URL of the demo served by its container."""
    return demo_container[1]


@pytest.fixture(scope="package")
def host_demo_url(demo_context) -> str:
    """Base URL of the same site served by ``serve.py`` on the host, as a person without Docker would."""
    with serve_site(demo_context / "site") as url:
        yield url


@pytest.fixture(scope="package")
def artifacts() -> Path:
    """``artifacts/`` in the repository (gitignored): screenshots for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
