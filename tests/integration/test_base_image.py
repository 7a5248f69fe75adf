"""Importing a root filesystem never leaves a broken base image behind."""

from __future__ import annotations

import uuid

import pytest
from docker.errors import ImageNotFound

from ops.errors import DockerError
from ops.images.base import _import_rootfs


def test_failed_tar_leaves_no_image(docker_client, tmp_path):
    # The daemon imports even an empty tar stream as an image, so this checks our guard.
    tag = f"ops-test-broken:{uuid.uuid4().hex[:12]}"
    with pytest.raises(DockerError, match="tar exited"):
        _import_rootfs(docker_client, tmp_path / "missing-rootfs", tag)
    with pytest.raises(ImageNotFound):
        docker_client.images.get(tag)
