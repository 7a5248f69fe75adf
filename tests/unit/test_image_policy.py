"""Image policy and build logic against a fake Docker client: what is pulled, built, or reused.

The fake records every pull and build; a build consumes the streamed tar context, so the
tests see exactly which files a Dockerfile would get.
"""

from __future__ import annotations

import io
import itertools
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from docker.errors import ImageNotFound

from ops.errors import DockerError, UsageError
from ops.images.base import BASE_IMAGE
from ops.images.build import (
    CA_BUNDLE_NAME,
    RECIPE_HASH_LABEL,
    BuildError,
    build_recipe,
    default_ca_bundle,
    image_up_to_date,
    recipe_hash,
)
from ops.images.pipconf import pip_wheel_dirs
from ops.images.policy import (
    ImageResult,
    describe_images,
    ensure_image,
    recipe_extra_files,
)

NO_REGISTRY = 'Get "https://ghcr.io/v2/": dial tcp: lookup ghcr.io: no such host'
TORCH = "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"


class FakeImages:
    """``client.images``: the daemon's image store; a tag moves to the newest image that takes it."""

    def __init__(self):
        self.store: list[SimpleNamespace] = []
        self.removed: list[str] = []

    def add(self, tag: str, labels: dict[str, str] | None = None, image_id: str | None = None):
        image_id = image_id or f"sha256:{len(self.store) + 1:064x}"
        for old in self.store:
            if tag in old.tags:
                old.tags.remove(tag)
        image = SimpleNamespace(
            id=image_id, short_id=image_id[:19], tags=[tag], labels=labels or {}, attrs={"Size": 42}
        )
        self.store.append(image)
        return image

    def get(self, ref: str):
        for image in self.store:
            if ref == image.id or ref in image.tags:
                return image
        raise ImageNotFound(ref)

    def list(self, filters=None):
        key, _, value = filters["label"].partition("=")
        return [i for i in self.store if i.labels.get(key) == value and i.tags]

    def remove(self, ref, force=False):
        self.removed.append(ref)


class FakeAPI:
    """``client.api``: pull answers with ``pull_error`` or success; build follows ``build_script``."""

    def __init__(self, images: FakeImages):
        self.images = images
        self.timeout = 5
        self.pull_error: str | None = NO_REGISTRY
        self.pulls: list[str] = []
        self.builds: list[dict] = []
        self.build_script: list[dict] | None = None
        self._ids = itertools.count(100)

    def pull(self, image, stream, decode):
        assert stream and decode and self.timeout <= 30  # a short timeout while pulling
        self.pulls.append(image)
        yield {"status": "Pulling from x", "id": "layer"}
        if self.pull_error:
            yield {"error": self.pull_error}
            return
        self.images.add(image)

    def build(self, fileobj, custom_context, tag, labels, buildargs, timeout, **_):
        context = b"".join(fileobj)
        with tarfile.open(fileobj=io.BytesIO(context)) as tar:
            files = {m.name: (tar.extractfile(m).read(), m.mode) for m in tar.getmembers()}
        self.builds.append({"tag": tag, "files": files, "labels": labels, "args": buildargs})
        script = self.build_script or [{"stream": "Step 1/1 : FROM base\n"}]
        for message in script:
            yield message
            if "error" in message:
                return
        image = self.images.add(tag, labels, image_id=f"sha256:{next(self._ids):064x}")
        yield {"aux": {"ID": image.id}}
        yield {"stream": f"Successfully built {image.id[7:19]}\n"}


@pytest.fixture
def client():
    images = FakeImages()
    images.add(BASE_IMAGE, {"ops.managed": "true", "ops.base.source": "debootstrap"})
    return SimpleNamespace(images=images, api=FakeAPI(images))


@pytest.fixture
def recipe(tmp_path) -> Path:
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "Dockerfile").write_text("ARG BASE\nFROM ${BASE}\nCOPY ca-bundle.crt /\n")
    (folder / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (folder / "run.sh").chmod(0o755)
    (folder / "README.md").write_text("docs\n")
    (folder / ".dockerignore").write_text("README.md\n")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "x.pyc").write_bytes(b"junk")
    return folder


def ensure(client, recipe, policy, image="ghcr.io/acme/demo:1", **kw):
    return ensure_image(
        client,
        image=image,
        recipe_dir=recipe,
        policy=policy,
        build_tag="ops/demo:local",
        ca_bundle=None,
        extra_files={},
        **kw,
    )


def test_context_holds_recipe_empty_ca_bundle_and_extra_files(client, recipe, tmp_path):
    wheel = tmp_path / TORCH
    wheel.write_bytes(b"wheel")
    build_recipe(client, recipe, "ops/demo:local", extra_files={f"wheels/{TORCH}": wheel})
    files = client.api.builds[0]["files"]
    assert sorted(files) == sorted(
        [".dockerignore", CA_BUNDLE_NAME, "Dockerfile", "run.sh", f"wheels/{TORCH}"]
    )
    assert files[CA_BUNDLE_NAME] == (b"", 0o644)  # always there, so a Dockerfile can COPY it
    assert files["run.sh"][1] == 0o755  # the executable bit survives
    assert files[f"wheels/{TORCH}"][0] == b"wheel"


def test_build_labels_and_base_argument(client, recipe, tmp_path):
    ca = tmp_path / "corp.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    image_id = build_recipe(client, recipe, "ops/demo:local", ca_bundle=ca, build_args={"X": "1"})
    build = client.api.builds[0]
    assert build["files"][CA_BUNDLE_NAME][0] == ca.read_bytes()
    assert build["args"] == {"BASE": BASE_IMAGE, "X": "1"}
    assert build["labels"]["ops.managed"] == "true"
    assert build["labels"]["ops.recipe"] == "demo"
    assert image_id == client.images.get("ops/demo:local").id
    assert image_up_to_date(client, "ops/demo:local", build["labels"][RECIPE_HASH_LABEL])


def test_hash_follows_content_args_and_ca_but_not_ignored_files(client, recipe, tmp_path):
    first = recipe_hash(client, recipe)
    assert recipe_hash(client, recipe) == first
    (recipe / "README.md").write_text("other docs\n")  # listed in .dockerignore
    (recipe / "__pycache__" / "y.pyc").write_bytes(b"more junk")
    assert recipe_hash(client, recipe) == first
    assert recipe_hash(client, recipe, build_args={"X": "1"}) != first
    ca = tmp_path / "ca.pem"
    ca.write_text("pem")
    assert recipe_hash(client, recipe, ca_bundle=ca) != first
    (recipe / "run.sh").write_text("#!/bin/sh\necho changed\n")
    assert recipe_hash(client, recipe) != first


def test_failed_build_raises_with_log_tail_and_hint(client, recipe):
    client.api.build_script = [{"stream": f"line {i}\n"} for i in range(40)] + [
        {"stream": "ERROR: certificate verify failed: self-signed certificate in certificate chain\n"},
        {"error": "The command '/bin/sh -c pip install x' returned a non-zero code: 1"},
    ]
    with pytest.raises(BuildError) as caught:
        build_recipe(client, recipe, "ops/demo:local")
    error = caught.value
    assert isinstance(error, DockerError)
    assert "returned a non-zero code: 1" in error.message.splitlines()[0]
    assert len(error.log_tail) == 30 and error.log_tail[-1].startswith("ERROR: certificate")
    assert "line 39" in error.message and "line 5\n" not in error.message
    assert "CA bundle" in error.hint


def test_missing_dockerfile_is_a_usage_error(client, tmp_path):
    with pytest.raises(UsageError, match="no Dockerfile"):
        build_recipe(client, tmp_path, "ops/x:1")


def test_pull_policy_uses_a_present_image_without_pulling(client, recipe):
    client.images.add("ghcr.io/acme/demo:1")
    assert ensure(client, recipe, "pull") == ImageResult(
        "ghcr.io/acme/demo:1", "present", "ghcr.io/acme/demo:1 is already on this machine"
    )
    assert client.api.pulls == []


def test_pull_policy_fails_fast_naming_image_and_hint(client, recipe):
    with pytest.raises(DockerError) as caught:
        ensure(client, recipe, "pull")
    assert "ghcr.io/acme/demo:1" in caught.value.message
    assert "no such host" in caught.value.message
    assert "set image_policy: build" in caught.value.hint.lower()
    assert client.api.builds == [] and client.api.timeout == 5  # timeout restored


def test_pull_policy_pulls(client, recipe):
    client.api.pull_error = None
    lines: list[str] = []
    result = ensure(client, recipe, "pull", progress=lines.append)
    assert result.source == "pulled" and result.tag == "ghcr.io/acme/demo:1"
    assert "layer: Pulling from x" in lines


def test_pull_or_build_falls_back_then_reuses_the_build(client, recipe):
    first = ensure(client, recipe, "pull-or-build")
    assert (first.tag, first.source) == ("ops/demo:local", "built")
    assert "no such host" in first.detail
    second = ensure(client, recipe, "pull-or-build")
    assert (second.tag, second.source) == ("ops/demo:local", "cached-build")
    assert len(client.api.pulls) == 1 and len(client.api.builds) == 1  # no second pull attempt


def test_build_policy_rebuilds_only_on_change_and_drops_the_old_image(client, recipe):
    first = ensure(client, recipe, "build")
    assert first.source == "built" and client.api.pulls == []
    old_id = client.images.get("ops/demo:local").id
    assert ensure(client, recipe, "build").source == "cached-build"
    (recipe / "Dockerfile").write_text("ARG BASE\nFROM ${BASE}\nRUN true\n")
    assert ensure(client, recipe, "build").source == "built"
    assert client.images.get("ops/demo:local").id != old_id
    assert client.images.removed == [old_id]  # the replaced image no longer has a tag


def test_neither_pull_nor_build(client, recipe):
    client.api.build_script = [{"stream": "Step 2/3 : RUN false\n"}, {"error": "returned a non-zero code: 1"}]
    with pytest.raises(DockerError) as caught:
        ensure(client, recipe, "pull-or-build")
    message = caught.value.message
    assert message.startswith("image ghcr.io/acme/demo:1 can neither be pulled (")
    assert "no such host" in message and "nor built (building ops/demo:local" in message
    assert "RUN false" in message  # the build log tail is kept
    assert caught.value.hint


def test_kind_without_image_is_built_and_pull_needs_an_image(client, recipe):
    assert ensure(client, recipe, "pull-or-build", image=None).source == "built"
    with pytest.raises(UsageError):
        ensure(client, recipe, "pull", image=None)
    with pytest.raises(UsageError, match="unknown image policy"):
        ensure(client, recipe, "always")


def test_describe_images_reads_labels(client, recipe):
    ensure(client, recipe, "build")
    infos = {i.tag: i for i in describe_images(client)}
    assert infos["ops/demo:local"].origin == "built" and infos["ops/demo:local"].recipe == "demo"
    assert infos[BASE_IMAGE].origin == "base"
    [missing] = describe_images(client, ["nothing:here"])
    assert not missing.present and missing.origin == "missing"


def test_default_ca_bundle_prefers_environment(tmp_path):
    pem = tmp_path / "corp.pem"
    pem.write_text("pem")
    assert default_ca_bundle({"REQUESTS_CA_BUNDLE": str(pem)}) == pem
    assert default_ca_bundle({"SSL_CERT_FILE": str(tmp_path / "gone.pem"), "PIP_CERT": str(pem)}) == pem


@pytest.fixture
def no_host_pip_config(monkeypatch):
    """The host's own pip.conf (which may name a real wheel folder) stays out of these tests."""
    monkeypatch.setattr("ops.images.pipconf._pip_config_files", lambda env: [])


def test_torch_wheel_found_through_pip_config(tmp_path, no_host_pip_config):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / TORCH).write_bytes(b"")
    (wheels / TORCH.replace("x86_64", "aarch64")).write_bytes(b"")
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nfind-links = {wheels}\nextra-index-url = https://example.org/simple\n")
    assert pip_wheel_dirs({}, [conf]) == [wheels]
    found = recipe_extra_files("open-webui", arch="amd64", env={"PIP_FIND_LINKS": str(wheels)})
    assert found == {f"wheels/{TORCH}": wheels / TORCH}
    assert recipe_extra_files("chainlit-rag") == {}


def test_torch_wheel_in_a_file_index(tmp_path, no_host_pip_config):
    project = tmp_path / "simple" / "torch"
    project.mkdir(parents=True)
    (project / TORCH).write_bytes(b"")
    env = {"PIP_EXTRA_INDEX_URL": f"file://{tmp_path / 'simple'}"}
    assert recipe_extra_files("open-webui", arch="x86_64", env=env) == {f"wheels/{TORCH}": project / TORCH}


def test_missing_torch_wheel_says_where_to_put_it(tmp_path, no_host_pip_config):
    with pytest.raises(DockerError) as caught:
        recipe_extra_files("open-webui", arch="x86_64", env={"PIP_FIND_LINKS": str(tmp_path)})
    assert "torch 2.13.0" in caught.value.message and str(tmp_path) in caught.value.message
    assert "find-links" in caught.value.hint and "image_policy: pull" in caught.value.hint
