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


def test_a_user_suite_gets_a_stack_and_nothing_is_left_behind(tmp_path, ops_home, docker_client, web_image):  # noqa: F811
    profile = tmp_path / "plugged.yaml"
    profile.write_text(
        f"""\
name: plugged
models:
  tiny: {{path: bundled:tiny-fp32}}
gateway: {{port: {free_port()}}}
services:
  web:
    kind: container
    image: {web_image}
    image_policy: pull
    ports: ["127.0.0.1:{free_port()}:8080"]
    volumes: ["data:/data"]
volumes:
  data: {{}}
"""
    )
    suite = tmp_path / "user_suite"
    suite.mkdir()
    (suite / "test_user.py").write_text(USER_TEST)
    env = {**os.environ, "OPS_HOME": str(ops_home)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--ops-profile",
            str(profile),
            str(suite),
        ],
        cwd=suite,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout
    selector = {"label": f"{LABEL_STACK}=plugged"}
    assert docker_client.containers.list(all=True, filters=selector) == []
    assert docker_client.volumes.list(filters=selector) == []
    assert docker_client.networks.list(filters=selector) == []
