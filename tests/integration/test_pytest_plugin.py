"""The pytest plugin that ships with ops: another project's suite gets a stack for its session."""

from __future__ import annotations

import os
import subprocess
import sys

from ops.labels import STACK as LABEL_STACK
from tests.integration.hosts import free_port
from tests.integration.webimage import web_image  # noqa: F401  (fixture)

USER_TEST = """
import httpx
from openai import OpenAI


def test_chat_through_the_stack(ops_stack):
    client = OpenAI(base_url=ops_stack.gateway_url, api_key=ops_stack.key)
    answer = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "Hi"}], max_tokens=5)
    assert answer.choices[0].message.content
    assert httpx.get(ops_stack.services["web"] + "/health").text.strip() == "ok"
"""


PROFILE = """\
name: plugged
models:
  tiny: {{path: bundled:tiny-fp32}}
gateway: {{port: {gateway}}}
services:
  web:
    kind: container
    image: {image}
    image_policy: pull
    ports: ["127.0.0.1:{web}:8080"]
    volumes: ["data:/data"]
volumes:
  data: {{}}
"""


def write_profile(tmp_path, web_image) -> str:  # noqa: F811
    profile = tmp_path / "plugged.yaml"
    profile.write_text(PROFILE.format(gateway=free_port(), web=free_port(), image=web_image))
    return str(profile)


def run_user_suite(tmp_path, ops_home, profile: str) -> subprocess.CompletedProcess:
    suite = tmp_path / "user_suite"
    suite.mkdir(exist_ok=True)
    (suite / "test_user.py").write_text(USER_TEST)
    env = {**os.environ, "OPS_HOME": str(ops_home)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--ops-profile",
            profile,
            str(suite),
        ],
        cwd=suite,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_user_suite_gets_a_stack_and_nothing_is_left_behind(tmp_path, ops_home, docker_client, web_image):  # noqa: F811
    result = run_user_suite(tmp_path, ops_home, write_profile(tmp_path, web_image))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout
    selector = {"label": f"{LABEL_STACK}=plugged"}
    assert docker_client.containers.list(all=True, filters=selector) == []
    assert docker_client.volumes.list(filters=selector) == []
    assert docker_client.networks.list(filters=selector) == []


def test_the_users_own_volumes_survive_the_session(tmp_path, ops_home, docker_client, web_image):  # noqa: F811
    """A volume of that stack from before (say, last week's chats) is the user's: it is kept."""
    docker_client.volumes.create(
        "ops-plugged-data", labels={LABEL_STACK: "plugged", "ops.volume": "ops-plugged-data"}
    )
    try:
        result = run_user_suite(tmp_path, ops_home, write_profile(tmp_path, web_image))
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        assert [v.name for v in docker_client.volumes.list(filters={"label": f"{LABEL_STACK}=plugged"})] == [
            "ops-plugged-data"
        ]
    finally:
        docker_client.volumes.get("ops-plugged-data").remove(force=True)


def test_a_running_stack_of_that_name_is_refused_not_taken_down(tmp_path, ops_home, docker_client, web_image):  # noqa: F811
    from ops.cli import main

    profile = write_profile(tmp_path, web_image)
    assert main(["up", profile]) == 0
    try:
        result = run_user_suite(tmp_path, ops_home, profile)
        assert result.returncode != 0
        assert "stack plugged already runs" in result.stdout and "ops down plugged" in result.stdout
        running = docker_client.containers.list(filters={"label": f"{LABEL_STACK}=plugged"})
        assert [c.name for c in running] == ["ops-plugged-web"]
        assert docker_client.volumes.get("ops-plugged-data")
    finally:
        main(["down", "--volumes", "--yes", profile])
