"""Each service image alone, as a testcontainers container with a wait strategy, against the real model host."""

from __future__ import annotations

import secrets

import httpx
import pytest
from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import HttpWaitStrategy

from ops.images.build import default_ca_bundle
from ops.images.policy import default_build_tag, ensure_image
from ops.network import ensure_network, network_name
from ops.paths import shipped
from tests.integration.hosts import RunningHost


@pytest.fixture
def bridge_host(tmp_path, ops_home, docker_client):
    """A real model host on 127.0.0.1 and on the gateway address of a stack network, as `ops up` runs it."""
    gateway = ensure_network(docker_client, "alone")
    running = RunningHost(ops_home, tmp_path, "alone")
    running.start(["127.0.0.1", gateway])
    running.gateway_ip = gateway
    yield running
    running.stop()
    docker_client.networks.get(network_name("alone")).remove()


def test_open_webui_image_alone_lists_and_chats_with_the_host_models(
    open_webui_image, local_testcontainers, cleanup_by_label, bridge_host
):
    container = (
        DockerContainer(open_webui_image.tag)
        .with_envs(
            OFFLINE_MODE="true",
            WEBUI_SECRET_KEY=secrets.token_urlsafe(32),
            ENABLE_OLLAMA_API="false",
            OPENAI_API_BASE_URL=f"http://host.docker.internal:{bridge_host.port}/v1",
            OPENAI_API_KEY=bridge_host.key,
        )
        .with_kwargs(
            labels=cleanup_by_label,
            network=network_name("alone"),
            extra_hosts={"host.docker.internal": bridge_host.gateway_ip},
        )
        .waiting_for(HttpWaitStrategy(8080, "/health").with_startup_timeout(300).with_poll_interval(0.5))
    )
    container.ports["8080/tcp"] = ("127.0.0.1", None)
    with (
        container,
        httpx.Client(base_url=f"http://127.0.0.1:{container.get_exposed_port(8080)}", timeout=60) as http,
    ):
        signup = http.post(
            "/api/v1/auths/signup",
            json={"name": "t", "email": "t@example.com", "password": secrets.token_urlsafe(16)},
        )
        headers = {"Authorization": f"Bearer {signup.json()['token']}"}
        http.cookies.clear()
        ids = {m["id"] for m in http.get("/api/models", headers=headers).json()["data"]}
        assert {"tiny", "tiny-int4"} <= ids
        body = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "stream": False}
        answer = http.post("/api/chat/completions", json=body, headers=headers).json()
        assert answer["choices"][0]["message"]["content"].strip()


def test_webgpu_demo_image_alone_serves_page_model_and_runtime(
    docker_client, base_image, local_testcontainers, cleanup_by_label
):
    recipe = shipped("stacks") / "webgpu-demo"
    image = ensure_image(
        docker_client,
        image=None,
        recipe_dir=recipe,
        policy="build",
        build_tag=default_build_tag(recipe),
        ca_bundle=default_ca_bundle(),
    )
    container = (
        DockerContainer(image.tag)
        .with_kwargs(labels=cleanup_by_label)
        .waiting_for(HttpWaitStrategy(8080, "/health").with_startup_timeout(60).with_poll_interval(0.2))
    )
    container.ports["8080/tcp"] = ("127.0.0.1", None)
    with container, httpx.Client(base_url=f"http://127.0.0.1:{container.get_exposed_port(8080)}") as http:
        page = http.get("/")
        assert page.status_code == 200 and "navigator.gpu" in page.text + http.get("/main.js").text
        assert page.headers["cross-origin-opener-policy"] == "same-origin"
        assert http.get("/ort/ort-wasm-simd-threaded.wasm").headers["content-type"] == "application/wasm"
