"""The demo's server, in its container and on the host: MIME types the browser insists on,
COOP/COEP on every answer, the health path, and the pinned runtime and committed model served."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.containers import start_demo_container

RECIPE = Path(__file__).resolve().parents[2] / "stacks" / "webgpu-demo"

MIME_TYPES = [
    ("", "text/html"),
    ("index.html", "text/html"),
    ("main.js", "text/javascript"),
    ("pad.js", "text/javascript"),
    ("style.css", "text/css"),
    ("ort/ort.webgpu.min.mjs", "text/javascript"),
    ("ort/ort-wasm-simd-threaded.asyncify.mjs", "text/javascript"),
    ("ort/ort-wasm-simd-threaded.asyncify.wasm", "application/wasm"),
    ("ort/ort.wasm.min.mjs", "text/javascript"),
    ("ort/ort-wasm-simd-threaded.mjs", "text/javascript"),
    ("ort/ort-wasm-simd-threaded.wasm", "application/wasm"),
    ("model/digits.onnx", "application/octet-stream"),
    ("model/samples.json", "application/json"),
]
ISOLATION = {"cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp"}


@pytest.fixture(params=["container", "host"])
def served(request) -> str:
    """Base URL of the demo, from its container or from serve.py on the host."""
    return request.getfixturevalue("demo_url" if request.param == "container" else "host_demo_url")


def _isolation(response: httpx.Response) -> dict[str, str]:
    return {name: response.headers.get(name) for name in ISOLATION}


def test_files_have_browser_mime_types_and_isolation_headers(served):
    with httpx.Client(base_url=served, timeout=10) as client:
        seen = {}
        for path, _mime in MIME_TYPES:
            response = client.get("/" + path)
            assert response.status_code == 200, path
            seen[path] = response.headers["content-type"].split(";")[0]
            assert _isolation(response) == ISOLATION, path
    assert seen == dict(MIME_TYPES)


def test_health_and_root_answer_for_probes(served):
    with httpx.Client(base_url=served, timeout=10) as client:
        health = client.get("/health")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        assert client.head("/health").status_code == 200
        # The service kind's default probe path.
        assert client.get("/").status_code == 200


def test_no_listings_and_errors_keep_the_headers(served):
    with httpx.Client(base_url=served, timeout=10) as client:
        listing = client.get("/model/")
        missing = client.get("/no-such-file.js")
    assert listing.status_code == 404
    assert missing.status_code == 404
    assert _isolation(missing) == ISOLATION


def test_serves_the_pinned_runtime_and_the_committed_model(served):
    with httpx.Client(base_url=served, timeout=30) as client:
        version = client.get("/ort/VERSION").text
        model = client.get("/model/digits.onnx").content
        wasm = client.get("/ort/ort-wasm-simd-threaded.asyncify.wasm").content
    assert version.startswith("onnxruntime-web@1.30.0 sha512-")
    assert model == (RECIPE / "site" / "model" / "digits.onnx").read_bytes()
    assert wasm[:4] == b"\0asm"


def test_container_runs_unprivileged_passes_its_healthcheck_and_stops_at_once(docker_client, demo_image):
    container, _url = start_demo_container(docker_client, demo_image)
    try:
        assert container.exec_run(["id", "-u"]).output.decode().strip() == "65534"
        # The image's own HEALTHCHECK command, run now instead of waiting for its interval.
        check = docker_client.images.get(demo_image).attrs["Config"]["Healthcheck"]["Test"]
        assert check[0] == "CMD"
        assert container.exec_run(check[1:]).exit_code == 0
        started = time.monotonic()
        container.stop(timeout=10)
        # serve.py handles SIGTERM itself; as PID 1 without a handler it would wait out the 10 s.
        assert time.monotonic() - started < 5
        container.reload()
        assert container.attrs["State"]["ExitCode"] == 0
    finally:
        container.remove(force=True)
