"""An earlier build of the same recipe, found by its recipe hash and given another tag: no rebuild.

Built images are tagged by version (``ops-open-webui:0.12.4``, see :mod:`ops.versions`); an image
built under another tag (``ops-open-webui:local`` before versions were in tags, or one a bundle
loaded) carries the same ``ops.recipe-hash`` label when it was built from exactly the same inputs.
"""

from __future__ import annotations

from collections.abc import Callable

import requests
from docker.errors import DockerException

from ops import labels
from ops.errors import DockerError


def reuse_build(client, tag: str, digest: str, say: Callable[[str], None] = lambda _: None) -> bool:
    """Tag as ``tag`` an image labelled with recipe hash ``digest``, if there is one; True when so."""
    try:
        found = client.images.list(filters={"label": f"{labels.RECIPE_HASH}={digest}"})
        tagged = [
            image for image in found if image.tags and (image.labels or {}).get(labels.RECIPE_HASH) == digest
        ]
        if not tagged:
            return False
        image = tagged[0]
        repository, _, name = tag.rpartition(":")
        image.tag(repository or tag, name if repository else "latest")
    except (DockerException, requests.exceptions.RequestException) as exc:
        raise DockerError(
            f"cannot tag an earlier build as {tag}: {exc}", hint="Is the Docker daemon healthy?"
        ) from exc
    say(f"{tag}: the same recipe was built before as {image.tags[0]}; tagged it, nothing rebuilt")
    return True
