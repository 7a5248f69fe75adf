"""The real Open WebUI (0.12.4, from PyPI) built from stacks/open-webui, run with testcontainers.

Proves the recipe: the image starts offline, answers /health, takes its first user (who becomes
admin), serves /api/models to that user's token, uses a CPU torch, trusts the host's CA bundle,
and its HEALTHCHECK turns healthy.
"""

from __future__ import annotations

import secrets
import time

import httpx
import pytest
from tenacity import retry, retry_if_result, stop_after_delay, wait_fixed
from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import HttpWaitStrategy

STARTUP_TIMEOUT_S = 240


@pytest.fixture
def open_webui(open_webui_image, local_testcontainers, cleanup_by_label):
    """A running Open WebUI container on a loopback port, and its base URL."""
    container = (
        DockerContainer(open_webui_image.tag)
        .with_envs(
            OFFLINE_MODE="true",
            HF_HUB_OFFLINE="1",
            WEBUI_SECRET_KEY=secrets.token_urlsafe(32),
            ENABLE_OLLAMA_API="false",
        )
        .with_kwargs(labels=cleanup_by_label)
        .waiting_for(
            HttpWaitStrategy(8080, "/health")
            .for_response_predicate(lambda body: '"status":true' in body.replace(" ", ""))
            .with_startup_timeout(STARTUP_TIMEOUT_S)
            .with_poll_interval(0.5)
        )
    )
    # Loopback only: until its first signup, Open WebUI hands admin to whoever asks.
    container.ports["8080/tcp"] = ("127.0.0.1", None)
    started = time.monotonic()
    with container:
        healthy_after = time.monotonic() - started
        print(f"\nopen-webui healthy {healthy_after:.1f} s after start")
        port = container.get_exposed_port(8080)
        yield container, f"http://127.0.0.1:{port}"


def test_open_webui_serves_health_signup_and_models(open_webui):
    container, base = open_webui
    with httpx.Client(base_url=base, timeout=30) as http:
        assert http.get("/health").json() == {"status": True}

        signup = http.post(
            "/api/v1/auths/signup",
            json={"name": "Ops Test", "email": "ops-test@example.com", "password": secrets.token_urlsafe(16)},
        )
        assert signup.status_code == 200, signup.text
        user = signup.json()
        assert user["role"] == "admin"  # the first user becomes admin
        token = user["token"]
        http.cookies.clear()  # signup also set a session cookie; the bearer token alone must do

        assert http.get("/api/models").status_code == 401
        models = http.get("/api/models", headers={"Authorization": f"Bearer {token}"})
        assert models.status_code == 200, models.text
        assert isinstance(models.json()["data"], list)

        # Signup closed itself after the first (admin) user.
        second = http.post(
            "/api/v1/auths/signup",
            json={"name": "Other", "email": "other@example.com", "password": secrets.token_urlsafe(16)},
        )
        assert second.status_code == 403


def test_open_webui_image_internals(open_webui):
    container, _ = open_webui
    torch = container.exec(["python3", "-c", "import torch; print(torch.__version__)"])
    assert torch.exit_code == 0 and torch.output.decode().strip().endswith("+cpu")

    # The merged CA store is what requests (and so pip and open-webui) trusts, not certifi's.
    ca = container.exec(
        [
            "python3",
            "-c",
            "import requests; requests.get('https://pypi.org/simple/pip/', timeout=30).raise_for_status()",
        ]
    )
    assert ca.exit_code == 0, ca.output.decode()[-2000:]

    @retry(
        retry=retry_if_result(lambda status: status != "healthy"),
        stop=stop_after_delay(60),
        wait=wait_fixed(2),
        retry_error_callback=lambda state: state.outcome.result(),  # the last status, for the assert
    )
    def health_status() -> str:
        container.get_wrapped_container().reload()
        return container.get_wrapped_container().attrs["State"]["Health"]["Status"]

    assert health_status() == "healthy"  # the image's own HEALTHCHECK passes
