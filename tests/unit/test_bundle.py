"""ops bundle without Docker: what a bundle holds, each bad input refused in one line with nothing
changed, a bundle without images loaded end to end, the loaded-image record, and the offline check."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import docker.errors
import pytest

from ops import archive
from ops import plan as stack_plan
from ops.archive import ArchiveError, ArchiveWriter
from ops.bundle import create as bundle_create
from ops.bundle import load as bundle_load
from ops.bundle import readiness, registry, wheels
from ops.cli import main
from ops.errors import UsageError
from ops.models import recipes
from ops.settings import Settings

RECIPE_PROFILE = """\
name: carry
models:
  smollm2: {recipe: smollm2-135m-instruct, precision: int4}
  tiny: {path: "bundled:tiny-fp32"}
  phi: {catalog: phi-4-mini, optional: true}
"""
NOTHING_PROFILE = """\
name: nothing
models:
  remote: {url: "http://127.0.0.1:9/v1", model: m}
  phi: {catalog: phi-4-mini, optional: true}
"""


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("OPS_CACHE", str(path))
    return path


def profile(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(text)
    return path


def built_model(cache: Path, precision: str = "int4") -> Path:
    """A fake finished recipe build where the loader expects it."""
    folder = recipes.output_dir(recipes.SMOLLM2, precision, cache)
    folder.mkdir(parents=True)
    (folder / "genai_config.json").write_text('{"model": {"context_length": 8}}')
    (folder / recipes.MANIFEST).write_text("{}")
    (folder / "model.onnx").write_bytes(b"\x01" * 5000)
    return folder


def snapshot(*roots: Path) -> dict[str, bytes]:
    files = {}
    for root in roots:
        if root.exists():
            files.update({str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()})
    return files


def fake_wheels(into: Path, say) -> list[Path]:
    wheel = into / "ops_workshop-9.9-py3-none-any.whl"
    wheel.write_bytes(b"PK fake wheel")
    return [wheel]


@pytest.fixture
def made(tmp_path, cache, monkeypatch) -> tuple[Path, Path]:
    """A bundle of a profile with a recipe model and no services (no Docker needed): (bundle, model)."""
    folder = built_model(cache)
    monkeypatch.setattr(wheels, "build", fake_wheels)
    monkeypatch.setattr("ops.models.recipes.build.ensure_models", lambda *a, **k: {})
    plan = stack_plan.load(str(profile(tmp_path, RECIPE_PROFILE)), ask_catalog=False)
    out = tmp_path / "carry.opsbundle"
    result = bundle_create.create(plan, out)
    assert result.bootstrap == (
        "tar -xf carry.opsbundle wheels && python -m pip install --no-index --find-links wheels ops-workshop"
        " && ops bundle load carry.opsbundle"
    )
    return out, folder


def test_the_manifest_names_every_member_and_what_was_left_out(made):
    out, folder = made
    manifest = archive.verify(out, kind="bundle")
    meta = manifest.meta
    assert meta["profile"] == "carry" and meta["profile_file"] == "profile/profile.yaml"
    assert meta["models"] == [{"alias": "smollm2", "folder": folder.name, "bytes": 5000 + 2 + 32}]
    assert meta["images"] == []
    left = {x["what"]: x["reason"] for x in meta["left_out"]}
    assert "ships with ops" in left["model tiny"] and "Foundry catalog" in left["model phi"]
    assert meta["wheels"]["files"] == ["ops_workshop-9.9-py3-none-any.whl"]
    assert meta["wheels"]["platform"].startswith("cp3")
    assert set(manifest.files) == {
        "profile/profile.yaml",
        f"models/{folder.name}/genai_config.json",
        f"models/{folder.name}/{recipes.MANIFEST}",
        f"models/{folder.name}/model.onnx",
        "wheels/ops_workshop-9.9-py3-none-any.whl",
    }
    assert not list(out.parent.glob(".ops-bundle-*")), "the work folder is removed"


def test_the_wheels_come_out_of_a_bundle_with_plain_tar(made, tmp_path):
    out, _folder = made
    unpack = tmp_path / "unpack"
    unpack.mkdir()
    subprocess.run(["tar", "-xf", str(out), "wheels"], cwd=unpack, check=True)
    assert [p.name for p in (unpack / "wheels").iterdir()] == ["ops_workshop-9.9-py3-none-any.whl"]


def test_a_bundle_without_images_loads_where_ops_finds_it(made, tmp_path, monkeypatch):
    out, folder = made
    other_cache = tmp_path / "other-cache"
    monkeypatch.setenv("OPS_CACHE", str(other_cache))
    result = bundle_load.load(out)
    placed = other_cache / "models" / folder.name
    assert result.models == [str(placed)] and recipes.is_built(placed)
    assert (placed / "model.onnx").read_bytes() == (folder / "model.onnx").read_bytes()
    assert (other_cache / "wheelhouse" / "ops_workshop-9.9-py3-none-any.whl").is_file()
    assert (
        result.install_command
        == f"python -m pip install --no-index --find-links {other_cache / 'wheelhouse'} ops-workshop"
    )
    settings = Settings.from_env()
    assert (settings.home / "bundles" / "profile.yaml").read_text() == RECIPE_PROFILE
    assert registry.read(settings)["bundles"][0]["models"] == [str(placed)]
    assert not list(other_cache.glob(".bundle-load-*")), "the staging folder is removed"
    assert result.warnings == []
    # Loaded again: the model already there is kept, not replaced.
    again = bundle_load.load(out)
    assert again.models == [] and again.models_kept == [str(placed)]


def test_a_profile_with_nothing_to_carry_is_refused(tmp_path, cache):
    plan = stack_plan.load(str(profile(tmp_path, NOTHING_PROFILE)), ask_catalog=False)
    with pytest.raises(UsageError, match="nothing to carry offline") as caught:
        bundle_create.create(plan, tmp_path / "x.opsbundle")
    assert caught.value.hint and not (tmp_path / "x.opsbundle").exists()


@pytest.mark.parametrize(
    ("where", "message"),
    [("exists", "exists already"), ("folder", "is a folder"), ("nofolder", "does not exist")],
)
def test_an_output_path_that_cannot_be_written_is_refused_before_anything_is_made(tmp_path, where, message):
    target = {
        "exists": tmp_path / "old.opsbundle",
        "folder": tmp_path,
        "nofolder": tmp_path / "missing" / "x.opsbundle",
    }[where]
    if where == "exists":
        target.write_bytes(b"keep me")
    with pytest.raises(UsageError, match=message):
        bundle_create.check_output(target)
    if where == "exists":
        assert target.read_bytes() == b"keep me"


def test_an_output_folder_without_write_permission_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(bundle_create.os, "access", lambda path, mode: False)
    with pytest.raises(UsageError, match="cannot write in") as caught:
        bundle_create.check_output(tmp_path / "x.opsbundle")
    assert "folder you own" in (caught.value.hint or "")


def test_no_checkout_means_no_wheel_of_ops(monkeypatch, tmp_path):
    monkeypatch.setattr(wheels, "__file__", str(tmp_path / "site-packages" / "ops" / "bundle" / "wheels.py"))
    with pytest.raises(UsageError, match="not from a source checkout") as caught:
        wheels.checkout()
    assert "--no-wheels" in (caught.value.hint or "")


def backup(tmp_path: Path) -> Path:
    path = tmp_path / "a.opsbackup"
    with ArchiveWriter(path, "backup", meta={"stack": "s"}) as writer:
        writer.add_bytes("volumes/v.tar", b"data")
    return path


def torn(tmp_path: Path, made_bundle: Path) -> Path:
    data = made_bundle.read_bytes()
    path = tmp_path / "torn.opsbundle"
    path.write_bytes(data[: len(data) // 2])
    return path


def tampered(tmp_path: Path, made_bundle: Path) -> Path:
    data = bytearray(made_bundle.read_bytes())
    data[data.index(b"\x01" * 100) + 50] = 2
    path = tmp_path / "tampered.opsbundle"
    path.write_bytes(bytes(data))
    return path


def escaping(tmp_path: Path, made_bundle: Path) -> Path:
    """A bundle whose (unsealed) manifest was rewritten to name a member outside its folders."""
    path = tmp_path / "escaping.opsbundle"
    with tarfile.open(made_bundle) as src, tarfile.open(path, "w") as out:
        for member in src.getmembers():
            data = src.extractfile(member).read()
            if member.name == archive.MANIFEST:
                body = json.loads(data)
                body["files"]["models/../../evil"] = {
                    "size": 1,
                    "sha256": __import__("hashlib").sha256(b"z").hexdigest(),
                }
                evil = tarfile.TarInfo("models/../../evil")
                evil.size = 1
                out.addfile(evil, __import__("io").BytesIO(b"z"))
                data = json.dumps(body).encode()
                member.size = len(data)
            out.addfile(member, __import__("io").BytesIO(data))
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp, made: tmp / "missing.opsbundle", "no archive at"),
        (
            lambda tmp, made: (
                (tmp / "junk.opsbundle").write_bytes(b"not a tar" * 100) and tmp / "junk.opsbundle"
            ),
            "torn or not an archive",
        ),
        (lambda tmp, made: backup(tmp), "is an ops backup, not a bundle"),
        (torn, "torn|no manifest|missing"),
        (tampered, "does not match its checksum"),
        (escaping, "not one a bundle holds"),
    ],
    ids=["missing", "not-a-bundle", "a-backup", "torn", "tampered", "escaping-member"],
)
def test_each_bad_bundle_is_refused_in_one_line_and_changes_nothing(
    made, tmp_path, monkeypatch, capsys, make, message
):
    out, _folder = made
    bad = make(tmp_path, out)
    other_cache = tmp_path / "other-cache"
    monkeypatch.setenv("OPS_CACHE", str(other_cache))
    settings = Settings.from_env()
    before = snapshot(other_cache, settings.home)
    with pytest.raises(ArchiveError, match=message) as caught:
        bundle_load.load(bad)
    assert caught.value.hint and "\n" not in caught.value.message
    assert snapshot(other_cache, settings.home) == before
    assert not (other_cache / "models").exists() and not (settings.home / "bundles").exists()
    # Through the CLI: exit 1, one error line and a hint, no traceback.
    assert main(["bundle", "load", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "hint:" in err and "Traceback" not in err


class _Images:
    def __init__(self, ids: dict[str, str]):
        self.ids = ids

    def get(self, tag):
        if tag not in self.ids:
            raise docker.errors.ImageNotFound(tag)
        return type("Image", (), {"id": self.ids[tag], "labels": {}})()


class _Client:
    def __init__(self, ids: dict[str, str]):
        self.images = _Images(ids)


def test_a_loaded_build_is_trusted_only_as_loaded_and_for_the_recipe_as_it_is(tmp_path):
    settings = Settings.from_env()
    recipe = tmp_path / "web"
    recipe.mkdir()
    (recipe / "Dockerfile").write_text("FROM x\n")
    registry.record(
        settings,
        {
            "ops-web:local": {
                "id": "sha256:aa",
                "recipe_digest": registry.recipe_digest(recipe),
                "bundle": "b",
            }
        },
        {"file": "b"},
    )
    assert "loaded from bundle b" in registry.trusted(
        _Client({"ops-web:local": "sha256:aa"}), "ops-web:local", recipe, settings
    )
    assert (
        registry.trusted(_Client({"ops-web:local": "sha256:bb"}), "ops-web:local", recipe, settings) is None
    )
    assert registry.trusted(_Client({}), "ops-web:local", recipe, settings) is None
    assert (
        registry.trusted(_Client({"ops-web:local": "sha256:aa"}), "ops-other:local", recipe, settings) is None
    )
    (recipe / "Dockerfile").write_text("FROM y\n")
    assert (
        registry.trusted(_Client({"ops-web:local": "sha256:aa"}), "ops-web:local", recipe, settings) is None
    )


def test_readiness_names_each_missing_model_and_the_command_that_fixes_it(tmp_path, cache):
    plan = stack_plan.load(str(profile(tmp_path, RECIPE_PROFILE)), ask_catalog=False)
    before = readiness.readiness(plan, None, profile_arg="carry")
    assert not before.ok and [g.what for g in before.gaps] == ["model smollm2"]
    assert (
        "ops bundle load FILE" in before.gaps[0].fix
        and "ops model build --profile carry" in before.gaps[0].fix
    )
    assert any("skipped offline" in n for n in before.notes)
    built_model(cache)
    after = readiness.readiness(plan, None)
    assert after.ok and "model smollm2: built" in after.ready


def test_a_required_catalog_model_is_never_ready_offline(tmp_path, cache):
    plan = stack_plan.load(
        str(profile(tmp_path, "models:\n  phi: {catalog: phi-4-mini}\n")), ask_catalog=False
    )
    found = readiness.readiness(plan, None)
    assert not found.ok and "needs the network" in found.gaps[0].reason


def test_ops_up_uses_a_loaded_build_without_building_until_the_recipe_changes(tmp_path, monkeypatch):
    from ops.images import policy
    from ops.images.service import ensure_service_image

    recipe = tmp_path / "web"
    recipe.mkdir()
    (recipe / "Dockerfile").write_text("FROM x\n")
    path = tmp_path / "p.yaml"
    path.write_text(
        'name: p\nmodels:\n  tiny: {path: "bundled:tiny-fp32"}\nservices:\n'
        "  web: {kind: container, build: {context: web}, image_policy: build}\n"
    )
    service = stack_plan.load(str(path), ask_catalog=False).services["web"]
    settings = Settings.from_env()
    registry.record(
        settings,
        {
            service.build_tag: {
                "id": "sha256:aa",
                "recipe_digest": registry.recipe_digest(recipe),
                "bundle": "b",
            }
        },
        {"file": "b"},
    )
    calls = []

    def policy_run(client, **kwargs):
        calls.append(kwargs["build_tag"])
        return policy.ImageResult(kwargs["build_tag"], "built", "built")

    monkeypatch.setattr(policy, "ensure_image", policy_run)
    client = _Client({service.build_tag: "sha256:aa"})
    assert ensure_service_image(client, service, lambda _l: None) == (
        service.build_tag,
        "sha256:aa",
        "loaded",
    )
    assert calls == []
    (recipe / "Dockerfile").write_text("FROM y\n")
    assert ensure_service_image(client, service, lambda _l: None)[2] == "built"
    assert calls == [service.build_tag]


def test_a_gzip_bundle_loads_the_same(tmp_path, cache, monkeypatch):
    built_model(cache)
    monkeypatch.setattr(wheels, "build", fake_wheels)
    monkeypatch.setattr("ops.models.recipes.build.ensure_models", lambda *a, **k: {})
    plan = stack_plan.load(str(profile(tmp_path, RECIPE_PROFILE)), ask_catalog=False)
    result = bundle_create.create(plan, tmp_path / "z.opsbundle", compress=True)
    assert result.compressed and result.bootstrap.startswith("tar -xzf z.opsbundle wheels")
    monkeypatch.setenv("OPS_CACHE", str(tmp_path / "other"))
    assert len(bundle_load.load(result.path).models) == 1


@pytest.mark.parametrize(("online", "status"), [(True, "warn"), (False, "fail")])
def test_offline_ready_warns_while_the_index_answers_and_fails_when_it_does_not(
    tmp_path, cache, monkeypatch, online, status
):
    from ops.doctor.context import DoctorContext
    from ops.doctor.offline import OfflineReadyCheck

    monkeypatch.setattr(readiness, "network_there", lambda timeout=2.0: online)
    path = profile(tmp_path, RECIPE_PROFILE)
    outcome = OfflineReadyCheck().run(DoctorContext(str(path)))
    assert outcome.status == status and "model smollm2" in outcome.detail
    assert "ops bundle load FILE" in (outcome.fix or "")
    built_model(cache)
    assert OfflineReadyCheck().run(DoctorContext(str(path))).status == "ok"


def test_a_bundle_of_another_ops_version_or_platform_is_loaded_with_a_warning(made, tmp_path, monkeypatch):
    import ops

    out, _folder = made
    monkeypatch.setenv("OPS_CACHE", str(tmp_path / "other"))
    monkeypatch.setattr(ops, "__version__", "0.0.1")
    monkeypatch.setattr(wheels, "platform_tag", lambda: "cp399-elsewhere")
    warnings = bundle_load.load(out).warnings
    assert len(warnings) == 2 and "this is ops 0.0.1" in warnings[0] and "cp399-elsewhere" in warnings[1]
