"""Image policy and recipe builds against the real daemon, with tiny recipes made in tmp_path.

Every image and container made here carries ``ops.test=true`` and is removed by label.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid

import pytest
from docker.errors import DockerException

from ops.errors import DockerError
from ops.images.build import BuildError, build_recipe
from ops.images.policy import ensure_image

DOCKERFILE = """\
ARG BASE
FROM ${BASE}
ARG GREETING=unset
COPY ca-bundle.crt /etc/ops-extra-ca.crt
COPY hello.txt /hello.txt
RUN echo "$GREETING" > /greeting
"""
# An image on a registry: it cannot be pulled here (no registry), nor anywhere (no such repository).
REGISTRY_IMAGE = "ghcr.io/ops-test/no-such-image:0"


@pytest.fixture
def recipe(tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "Dockerfile").write_text(DOCKERFILE)
    (folder / "hello.txt").write_text("hello\n")
    return folder


@pytest.fixture
def ca_bundle(tmp_path):
    path = tmp_path / "corp-ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\nb3BzLXRlc3Q=\n-----END CERTIFICATE-----\n")
    return path


@pytest.fixture
def tag():
    return f"ops-test/tiny-{uuid.uuid4().hex[:8]}:local"


@pytest.fixture
def build_log(docker_client):
    """Progress lines of a build; the step images a failed build leaves behind are removed after."""
    lines: list[str] = []
    yield lines
    steps = [m.group(1) for line in lines if (m := re.match(r"^ ---> ([0-9a-f]{12})$", line))]
    for image_id in reversed(steps):
        with contextlib.suppress(DockerException):
            docker_client.images.remove(image_id)


def run(docker_client, image: str, command: str, labels) -> str:
    output = docker_client.containers.run(image, ["sh", "-c", command], remove=True, labels=labels)
    return output.decode()


def ensure(docker_client, recipe, tag, labels, **kw):
    kw.setdefault("policy", "build")
    kw.setdefault("image", None)
    return ensure_image(
        docker_client,
        recipe_dir=recipe,
        build_tag=tag,
        ca_bundle=kw.pop("ca_bundle", None),
        labels=labels,
        **kw,
    )


def test_build_with_ca_bundle_and_build_arg(
    docker_client, base_image, recipe, ca_bundle, tag, cleanup_by_label
):
    lines: list[str] = []
    image_id = build_recipe(
        docker_client,
        recipe,
        tag,
        ca_bundle=ca_bundle,
        build_args={"GREETING": "from-a-build-arg"},
        labels=cleanup_by_label,
        progress=lines.append,
    )
    image = docker_client.images.get(tag)
    assert image.id == image_id
    assert image.labels["ops.managed"] == "true" and image.labels["ops.recipe"] == "tiny"
    assert len(image.labels["ops.recipe-hash"]) == 64
    out = run(docker_client, tag, "cat /greeting /hello.txt /etc/ops-extra-ca.crt", cleanup_by_label)
    assert out == "from-a-build-arg\nhello\n" + ca_bundle.read_text()
    assert any(line.startswith("Step 1/") for line in lines)  # the build log reached progress


def test_without_ca_bundle_the_file_is_empty(docker_client, base_image, recipe, tag, cleanup_by_label):
    build_recipe(docker_client, recipe, tag, labels=cleanup_by_label)
    assert run(docker_client, tag, "wc -c < /etc/ops-extra-ca.crt", cleanup_by_label).strip() == "0"


def test_unchanged_recipe_is_not_rebuilt_and_a_change_is(
    docker_client, base_image, recipe, ca_bundle, tag, cleanup_by_label
):
    first = ensure(docker_client, recipe, tag, cleanup_by_label, ca_bundle=ca_bundle)
    assert first.source == "built" and first.tag == tag
    first_id = docker_client.images.get(tag).id

    lines: list[str] = []
    again = ensure(docker_client, recipe, tag, cleanup_by_label, ca_bundle=ca_bundle, progress=lines.append)
    assert again.source == "cached-build"
    assert docker_client.images.get(tag).id == first_id
    assert lines == []  # nothing was sent to the daemon

    (recipe / "hello.txt").write_text("changed\n")
    changed = ensure(docker_client, recipe, tag, cleanup_by_label, ca_bundle=ca_bundle)
    assert changed.source == "built"
    assert docker_client.images.get(tag).id != first_id
    assert run(docker_client, tag, "cat /hello.txt", cleanup_by_label) == "changed\n"


def test_pull_policy_fails_fast_with_the_hint(docker_client, recipe, tag, cleanup_by_label):
    started = time.monotonic()
    with pytest.raises(DockerError) as caught:
        ensure(docker_client, recipe, tag, cleanup_by_label, policy="pull", image=REGISTRY_IMAGE)
    assert time.monotonic() - started < 30
    assert REGISTRY_IMAGE in caught.value.message
    assert "set image_policy: build" in caught.value.hint.lower()


def test_pull_or_build_falls_back_to_the_recipe(docker_client, base_image, recipe, tag, cleanup_by_label):
    result = ensure(
        docker_client, recipe, tag, cleanup_by_label, policy="pull-or-build", image=REGISTRY_IMAGE
    )
    assert (result.tag, result.source) == (tag, "built")
    assert REGISTRY_IMAGE in result.detail and "pulling" in result.detail
    assert run(docker_client, tag, "cat /hello.txt", cleanup_by_label) == "hello\n"
    # Run again: the fallback build is reused without asking the registry again.
    assert (
        ensure(
            docker_client, recipe, tag, cleanup_by_label, policy="pull-or-build", image=REGISTRY_IMAGE
        ).source
        == "cached-build"
    )


def test_failing_run_step_reports_the_log_tail(
    docker_client, base_image, recipe, tag, cleanup_by_label, build_log
):
    (recipe / "Dockerfile").write_text(DOCKERFILE + "RUN echo marker-before-failure && exit 3\n")
    with pytest.raises(BuildError) as caught:
        build_recipe(docker_client, recipe, tag, labels=cleanup_by_label, progress=build_log.append)
    error = caught.value
    assert isinstance(error, DockerError)
    assert "returned a non-zero code: 3" in error.message.splitlines()[0]
    assert "marker-before-failure" in error.log_tail
    assert "marker-before-failure" in error.message
    assert error.hint and "Fix the step" in error.hint


def test_neither_pulled_nor_built(docker_client, base_image, recipe, tag, cleanup_by_label, build_log):
    (recipe / "Dockerfile").write_text(DOCKERFILE + "RUN echo broken-recipe && false\n")
    with pytest.raises(DockerError) as caught:
        ensure(
            docker_client,
            recipe,
            tag,
            cleanup_by_label,
            policy="pull-or-build",
            image=REGISTRY_IMAGE,
            progress=build_log.append,
        )
    first = caught.value.message.splitlines()[0]
    assert first.startswith(f"image {REGISTRY_IMAGE} can neither be pulled (")
    assert "nor built (" in first
    assert "broken-recipe" in caught.value.message
