"""What a recipe build leaves behind, removed after it: the image it replaced and its stages' images.

Both are several GB for Open WebUI. Nothing is forced: the daemon keeps an image that a container
still uses, and an image with a tag is never removed here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import docker
import requests
from docker.errors import DockerException

from ops import labels


def remove_stage_images(client: docker.DockerClient, image_ids: Iterable[str]) -> list[str]:
    """Remove the untagged stage images among ``image_ids``; return the ids removed.

    Only an image carrying ``ops.stage`` and no tag goes; the daemon also removes its untagged
    parents (the stage's step images) unless another image still builds on them. Refusals (a
    container uses it, someone tagged it meanwhile) keep the image.
    """
    removed = []
    for image_id in dict.fromkeys(image_ids):
        with contextlib.suppress(DockerException, requests.exceptions.RequestException):
            image = client.images.get(image_id)
            if image.tags or labels.STAGE not in (image.labels or {}):
                continue
            client.images.remove(image.id, force=False)
            removed.append(image.id)
    return removed


def remove_replaced_build(client: docker.DockerClient, image_id: str) -> None:
    """Delete the image a rebuild replaced, if nothing else names or uses it."""
    with contextlib.suppress(DockerException, requests.exceptions.RequestException):
        image = client.images.get(image_id)
        if not image.tags and (image.labels or {}).get(labels.MANAGED) == "true":
            # Without force the daemon refuses while a container still uses it: keep it then.
            client.images.remove(image_id, force=False)
