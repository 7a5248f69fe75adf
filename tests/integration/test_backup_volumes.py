"""The volume primitives of backup, restore and upgrade, with the real engine: a volume's files come back
with their owners, modes and links; a volume with data is never written over; no helper is left behind."""

from __future__ import annotations

import uuid

import pytest
from docker.types import Mount

from ops import labels
from ops.backup.volumes import HELPER_SERVICE, copy_volume, export_volume, import_volume, is_empty
from ops.docker_engine import connect
from ops.errors import ConflictError

PREFIX = f"ops-bkvol-{uuid.uuid4().hex[:6]}"
FILL = (
    "mkdir -p /v/a/b && echo hello > /v/a/b/f && head -c 3000000 /dev/urandom > /v/big && "
    "ln -s a/b/f /v/link && chown -R 1000:1001 /v/a && chmod 0700 /v/a && chmod 0640 /v/a/b/f"
)
LIST = "cd /v && find . -printf '%p %U:%G %m %y %l %s\\n' | sort && md5sum big"


@pytest.fixture
def client(docker_client):
    made = connect(work_timeout=600)
    yield made
    for volume in made.volumes.list(filters={"name": PREFIX}):
        volume.remove(force=True)


def sh(client, image: str, volume: str, script: str) -> str:
    out = client.containers.run(
        image, ["sh", "-c", script], mounts=[Mount("/v", volume)], remove=True, network_mode="none"
    )
    return out.decode()


def test_export_import_and_copy_keep_every_file_owner_mode_and_link(client, base_image, tmp_path):
    source, restored, copied = (f"{PREFIX}-{n}" for n in ("source", "restored", "copied"))
    client.volumes.create(source, labels={labels.STACK: "bkvol"})
    sh(client, base_image, source, FILL)
    listing = sh(client, base_image, source, LIST)
    assert not is_empty(client, source) and is_empty(client, f"{PREFIX}-missing")

    tar = tmp_path / "source.tar"
    size = export_volume(client, source, tar)
    assert size == tar.stat().st_size > 3_000_000 and tar.stat().st_mode & 0o777 == 0o600
    import_volume(client, restored, tar, volume_labels={labels.STACK: "bkvol2"})
    copy_volume(client, restored, copied, volume_labels={labels.STACK: "bkvol3"})
    assert sh(client, base_image, restored, LIST) == listing
    assert sh(client, base_image, copied, LIST) == listing
    assert client.volumes.get(restored).attrs["Labels"] == {labels.STACK: "bkvol2", labels.VOLUME: restored}
    assert client.volumes.get(copied).attrs["Labels"] == {labels.STACK: "bkvol3", labels.VOLUME: copied}

    # A volume with data is never written over; an empty one is filled.
    sh(client, base_image, restored, "echo mine > /v/mine")
    with pytest.raises(ConflictError, match="is not empty"):
        import_volume(client, restored, tar)
    with pytest.raises(ConflictError, match="is not empty"):
        copy_volume(client, source, restored)
    assert "mine" in sh(client, base_image, restored, "ls /v")
    empty = f"{PREFIX}-empty"
    client.volumes.create(empty)
    assert is_empty(client, empty)
    import_volume(client, empty, tar)
    assert sh(client, base_image, empty, LIST) == listing
    assert client.containers.list(all=True, filters={"label": f"{labels.SERVICE}={HELPER_SERVICE}"}) == []
