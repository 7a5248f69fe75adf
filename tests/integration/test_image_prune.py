"""What builds leave behind and what ``ops images prune`` removes, against the real daemon.

Tiny two-stage recipes in tmp_path (a few seconds each). The selection runs on this test's own
images only: the daemon holds other images that ``ops`` made (a real prune of the whole daemon
would be up to the profiles on this machine, not to a test).
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
import uuid

import pytest
from docker.errors import DockerException, ImageNotFound

from ops import labels
from ops.cli import main
from ops.images.build import BuildError, build_recipe
from ops.images.prune import Survey, prune, records, select

TWO_STAGES = """\
ARG BASE
FROM ${BASE} AS builder
COPY token.txt /token.txt
RUN cp /token.txt /made && head -c 3000000 /dev/urandom > /blob
FROM ${BASE}
COPY --from=builder /made /made
RUN %s
"""


@pytest.fixture
def made(docker_client):
    """Image ids a test made; removed after it (forced: a failed assertion may leave any of them)."""
    ids: list[str] = []
    yield ids
    for image_id in reversed(ids):
        with contextlib.suppress(DockerException):
            docker_client.images.remove(image_id, force=True)


def recipe(tmp_path, final_step: str = "true"):
    folder = tmp_path / f"two-stage-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    (folder / "Dockerfile").write_text(TWO_STAGES % final_step)
    (folder / "token.txt").write_text(uuid.uuid4().hex)  # no cache hit from an earlier run
    return folder


def with_label(client, key: str, value: str) -> list:
    return client.images.list(all=True, filters={"label": f"{key}={value}"})


def build(client, folder, lines, tag=None):
    tag = tag or f"ops-test/{folder.name}:local"
    return build_recipe(client, folder, tag, labels={"ops.test": "true"}, progress=lines.append)


def foreign_image(client) -> str:
    """An image nobody labelled: imported from a one-file tar, untagged."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        payload = uuid.uuid4().hex.encode()
        info = tarfile.TarInfo("hello.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    answer = client.api.import_image_from_data(data.getvalue())
    return json.loads(answer.strip().splitlines()[-1])["status"]


def test_a_two_stage_build_leaves_no_stage_image(docker_client, base_image, tmp_path, made):
    folder, lines = recipe(tmp_path), []
    try:
        made.append(build(docker_client, folder, lines))
    finally:  # what a broken clean-up leaves must not stay on the machine
        made += [i.id for i in docker_client.images.list(filters={"label": f"{labels.RECIPE}={folder.name}"})]
    assert "removed 1 build stage image(s) the build left behind" in lines
    # every stage was labelled: the final image names its stage by index
    assert docker_client.images.get(made[0]).labels[labels.STAGE] == "1"
    # neither the stage's image nor its step images are left (all=True lists step images too)
    selector = [f"{labels.RECIPE}={folder.name}", f"{labels.STAGE}=builder"]
    assert docker_client.images.list(all=True, filters={"label": selector}) == []


def test_prune_removes_only_labelled_unused_images(docker_client, base_image, tmp_path, made, capsys):
    lines: list[str] = []
    unused = build(docker_client, recipe(tmp_path), lines)
    in_use_folder = recipe(tmp_path)
    in_use_tag = f"ops-test/{in_use_folder.name}:local"
    in_use = build(docker_client, in_use_folder, lines, tag=in_use_tag)
    made += [unused, in_use]
    # A build that fails in its final stage leaves the finished builder stage behind, and the final
    # stage's last finished step: both labelled.
    failing = recipe(tmp_path, final_step="exit 3")
    with pytest.raises(BuildError):
        build(docker_client, failing, lines)
    left = {
        i.labels[labels.STAGE]: i.id
        for i in docker_client.images.list(filters={"dangling": True})
        if (i.labels or {}).get(labels.RECIPE) == failing.name
    }
    made += left.values()
    assert sorted(left) == ["1", "builder"]
    leftovers = sorted(left.values())
    # Not ops': an unlabelled image, and one built FROM the ops base by someone else (it inherits
    # the base's ops.managed label, nothing more); both untagged.
    foreign = foreign_image(docker_client)
    theirs = docker_client.images.build(
        fileobj=io.BytesIO(f"FROM {base_image}\nRUN echo {uuid.uuid4().hex} > /mine\n".encode()), rm=True
    )[0].id
    made += [foreign, theirs]

    ours = {unused, in_use, *leftovers, foreign, theirs}
    chosen = select([r for r in records(docker_client) if r.id in ours], {in_use_tag})
    assert {c.id: c.reason for c in chosen} == {unused: "unused-build", **dict.fromkeys(leftovers, "stage")}
    assert all(c.bytes > 0 for c in chosen)

    # The command lists them too (without removing anything), and never the foreign ones.
    capsys.readouterr()
    assert main(["images", "prune", "--dry-run", "--json"]) == 0
    listed = {entry["id"] for entry in json.loads(capsys.readouterr().out)["images"]}
    assert set(leftovers) <= listed and not listed & {foreign, theirs}

    result = prune(docker_client, Survey(tuple(chosen)))
    assert {r.id for r in result.removed} == {unused, *leftovers} and result.kept == ()
    for gone in (unused, *leftovers):
        with pytest.raises(ImageNotFound):
            docker_client.images.get(gone)
    for kept in (in_use, foreign, theirs):
        assert docker_client.images.get(kept).id == kept
