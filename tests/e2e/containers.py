"""Running the WebGPU demo's container for tests, and removing what tests made, by label."""

from __future__ import annotations

import contextlib

import httpx
import pytest
from docker.errors import NotFound
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

# ops.test marks everything tests make; the suite label keeps this package's cleanup to its own
# things when another test run shares the daemon.
TEST_LABELS = {"ops.test": "true", "ops.test.suite": "webgpu-demo"}
CONTAINER_PORT = 8080
HEALTH_TIMEOUT_S = 30


def remove_by_label(client) -> None:
    """Remove every container and image carrying all of ``TEST_LABELS``."""
    selector = {"label": [f"{key}={value}" for key, value in TEST_LABELS.items()]}
    for container in client.containers.list(all=True, filters=selector):
        with contextlib.suppress(NotFound):
            container.remove(force=True)
    for image in client.images.list(filters=selector):
        with contextlib.suppress(NotFound):
            client.images.remove(image.id, force=True)


def start_demo_container(client, image: str):
    """Run ``image`` with its port published on 127.0.0.1 only; return (container, base URL)."""
    container = client.containers.run(
        image,
        detach=True,
        labels=TEST_LABELS,
        ports={f"{CONTAINER_PORT}/tcp": ("127.0.0.1", None)},
    )
    container.reload()
    host_port = container.attrs["NetworkSettings"]["Ports"][f"{CONTAINER_PORT}/tcp"][0]["HostPort"]
    url = f"http://127.0.0.1:{host_port}/"
    try:
        for attempt in Retrying(
            stop=stop_after_delay(HEALTH_TIMEOUT_S),
            wait=wait_fixed(0.2),
            retry=retry_if_exception_type((httpx.HTTPError, AssertionError)),
        ):
            with attempt:
                answer = httpx.get(url + "health", timeout=2)
                assert answer.status_code == 200, answer.status_code
    except RetryError:
        logs = container.logs().decode(errors="replace")[-2000:]
        container.remove(force=True)
        pytest.fail(
            f"GET {url}health did not answer 200 within {HEALTH_TIMEOUT_S} s; container logs:\n{logs}"
        )
    return container, url
