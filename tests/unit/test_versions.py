"""``ops.versions``: where a service's version comes from, how it changes build args, tags and images."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from ops import plan as stack_plan
from ops import versions
from ops.errors import UsageError
from ops.images.reuse import reuse_build
from ops.profiles import load_path
from ops.profiles.errors import ProfileInvalid
from ops.settings import Settings

RECIPE = 'FROM ops-base:bookworm\nARG APP_VERSION=1.0\nCMD ["true"]\n'


def _profile(tmp_path: Path, services: str, name: str = "vers") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nmodels:\n  tiny: {{path: bundled:tiny-fp32}}\nservices:\n{services}")
    return path


def _plan(tmp_path: Path, services: str, monkeypatch) -> stack_plan.StackPlan:
    monkeypatch.setenv("OPS_HOME", str(tmp_path / "home"))
    return stack_plan.resolve(load_path(_profile(tmp_path, services)), ask_catalog=False)


def test_open_webui_default_version_is_the_dockerfile_arg_and_keeps_the_recipe_hash_inputs(
    tmp_path, monkeypatch
):
    service = _plan(tmp_path, "  ui: {kind: open-webui}\n", monkeypatch).services["ui"]
    default = versions.dockerfile_default(service.recipe_dir, "Dockerfile", "OPEN_WEBUI_VERSION")
    assert default and service.version == default
    assert service.build_args == ()  # the default is not passed: the cached build's hash stays
    assert service.build_tag == f"ops-open-webui:{default}"
    assert service.image.endswith(f":v{default}")
    assert service.container(None).labels()["ops.version"] == default


def test_profile_version_becomes_build_arg_tag_image_and_label(tmp_path, monkeypatch):
    service = _plan(tmp_path, '  ui: {kind: open-webui, version: "0.12.3"}\n', monkeypatch).services["ui"]
    assert service.version == "0.12.3"
    assert dict(service.build_args) == {"OPEN_WEBUI_VERSION": "0.12.3"}
    assert service.build_tag == "ops-open-webui:0.12.3"
    assert service.image == "ghcr.io/open-webui/open-webui:v0.12.3"
    spec = service.container(None)
    assert spec.labels()["ops.version"] == "0.12.3"
    # The label is not part of the spec hash: the image id decides a replace.
    assert spec.spec_hash() == service.container(None).spec_hash()


def test_image_service_version_is_its_tag_and_version_replaces_it(tmp_path, monkeypatch):
    plan = _plan(
        tmp_path,
        "  a: {kind: container, image: 'reg.example:5000/app:1.2'}\n"
        "  b: {kind: container, image: 'reg.example:5000/app:1.2', version: '1.3'}\n"
        "  c: {kind: container, image: 'app@sha256:" + "0" * 64 + "'}\n",
        monkeypatch,
    )
    assert (plan.services["a"].version, plan.services["a"].image) == ("1.2", "reg.example:5000/app:1.2")
    assert (plan.services["b"].version, plan.services["b"].image) == ("1.3", "reg.example:5000/app:1.3")
    assert plan.services["c"].version == ""


def test_a_built_service_without_a_version_keeps_local_and_refuses_a_version(tmp_path, monkeypatch):
    plan = _plan(tmp_path, "  rag: {kind: chainlit-rag}\n", monkeypatch)
    service = plan.services["rag"]
    assert (service.version, service.build_tag) == ("", "ops-chainlit-rag:local")
    with pytest.raises(UsageError, match="no version"):
        versions.apply(service, "2")


def test_custom_recipe_of_a_kind_with_a_version_arg(tmp_path, monkeypatch):
    recipe = tmp_path / "app"
    recipe.mkdir()
    (recipe / "Dockerfile").write_text(RECIPE)
    plan = _plan(tmp_path, f"  ui: {{kind: open-webui, build: {{context: {recipe}}}}}\n", monkeypatch)
    # The kind names OPEN_WEBUI_VERSION; this Dockerfile has no such ARG: no default, no version.
    assert plan.services["ui"].version == ""
    assert versions.apply(plan.services["ui"], "7").build_args == (("OPEN_WEBUI_VERSION", "7"),)


def test_version_in_profile_and_build_arg_must_agree(tmp_path, monkeypatch):
    with pytest.raises(UsageError, match="contradicts build.args.OPEN_WEBUI_VERSION"):
        _plan(
            tmp_path,
            '  ui: {kind: open-webui, version: "0.12.3", build: {args: {OPEN_WEBUI_VERSION: "0.12.2"}}}\n',
            monkeypatch,
        )


@pytest.mark.parametrize("bad", ["bad version", "-1", ".1", "x" * 129, "1.0/2", "1:2"])
def test_invalid_versions_are_refused(tmp_path, monkeypatch, bad):
    with pytest.raises(UsageError, match="not a valid version"):
        versions.check(bad)
    monkeypatch.setenv("OPS_HOME", str(tmp_path / "home"))
    with pytest.raises(ProfileInvalid, match=r"services\.ui\.version"):
        load_path(_profile(tmp_path, f"  ui: {{kind: open-webui, version: {bad!r}}}\n"))


def test_override_applies_while_the_profile_says_the_version_it_was_set_over(tmp_path, monkeypatch):
    monkeypatch.setenv("OPS_HOME", str(tmp_path / "home"))
    path = versions.overrides_path("vers", Settings.from_env())
    assert versions.save_override(path, "ui", "0.12.3", "0.12.4") == path
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    pinned = stack_plan.resolve(
        load_path(_profile(tmp_path, '  ui: {kind: open-webui, version: "0.12.4"}\n'))
    )
    assert pinned.services["ui"].version == "0.12.3"
    assert pinned.services["ui"].build_tag == "ops-open-webui:0.12.3"
    # The profile changed its version since: the profile wins.
    changed = stack_plan.resolve(
        load_path(_profile(tmp_path, '  ui: {kind: open-webui, version: "0.12.5"}\n'))
    )
    assert changed.services["ui"].version == "0.12.5"
    # Switching back to the profile's version forgets the override.
    assert versions.save_override(path, "ui", "0.12.4", "0.12.4") is None
    assert versions.read_overrides(path) == {}


def test_a_broken_overrides_file_is_ignored(tmp_path):
    path = tmp_path / "versions.json"
    path.write_text("{not json")
    assert versions.read_overrides(path) == {}
    path.write_text('{"ui": {"version": "bad version", "over": "1"}, "x": 3}')
    assert versions.read_overrides(path) == {}


def test_tags():
    assert versions.image_tag("reg:5000/a/b:1.2") == "1.2"
    assert versions.image_tag("reg:5000/a/b") is None
    assert versions.image_tag("a@sha256:00") is None
    assert versions.with_tag("reg:5000/a/b", "3") == "reg:5000/a/b:3"
    assert versions.with_tag("a:1", "2") == "a:2"


class _Image:
    def __init__(self, tags, labels):
        self.tags, self.labels, self.tagged = list(tags), labels, []

    def tag(self, repository, tag):
        self.tagged.append(f"{repository}:{tag}")


class _Images:
    def __init__(self, images):
        self.images = images

    def list(self, filters):
        key, _, value = filters["label"].partition("=")
        return [i for i in self.images if i.labels.get(key) == value]


def test_an_earlier_build_with_the_same_recipe_hash_is_tagged_not_rebuilt():
    same = _Image(["ops-open-webui:local"], {"ops.recipe-hash": "abc"})
    other = _Image(["ops-open-webui:0.12.3"], {"ops.recipe-hash": "def"})
    client = SimpleNamespace(images=_Images([other, same]))
    said: list[str] = []
    assert reuse_build(client, "ops-open-webui:0.12.4", "abc", said.append)
    assert same.tagged == ["ops-open-webui:0.12.4"] and other.tagged == []
    assert "nothing rebuilt" in said[0]
    assert not reuse_build(client, "ops-open-webui:9", "zzz")


def test_ops_up_forgets_a_kept_version_once_the_profile_changed(tmp_path, monkeypatch):
    from ops.upgrade import _forget_stale

    monkeypatch.setenv("OPS_HOME", str(tmp_path / "home"))
    path = versions.overrides_path("vers", Settings.from_env())
    versions.save_override(path, "ui", "0.12.4", "0.12.3")
    versions.save_override(path, "gone", "2", "1")
    said = '  ui: {kind: open-webui, version: "0.12.3"}\n'
    kept = stack_plan.resolve(load_path(_profile(tmp_path, said)))
    assert (kept.services["ui"].version, kept.services["ui"].profile_version) == ("0.12.4", "0.12.3")
    _forget_stale(kept, path)
    assert versions.read_overrides(path) == {"ui": ("0.12.4", "0.12.3")}  # still applies; "gone" went
    # The profile says 0.12.4 itself: the kept choice is forgotten, so going back to 0.12.3 means 0.12.3.
    _forget_stale(stack_plan.resolve(load_path(_profile(tmp_path, said.replace("0.12.3", "0.12.4")))), path)
    assert versions.read_overrides(path) == {}
    assert stack_plan.resolve(load_path(_profile(tmp_path, said))).services["ui"].version == "0.12.3"
