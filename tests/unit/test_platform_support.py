"""Where Foundry Local, onnxruntime-genai and the recipe builder run, and what `ops` says where they don't.

The platform is faked at its two sources (``sys.platform``, ``platform.machine()``) and a missing
package by making its import fail, as on a machine whose install left it out (Intel macOS).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import textwrap

import pytest

from ops.errors import ExitCode, ModelError
from ops.models import support
from ops.models.support import builder_support, foundry_support, genai_support, require_foundry, require_genai

#: What pyproject's markers leave out somewhere: absent, ``import`` of them fails.
OPTIONAL = ("foundry_local_sdk", "onnxruntime_genai", "onnxruntime", "uvloop")
INTEL_MAC_LINE = (
    "Foundry Local has no build for Intel macOS (x86_64): it serves Apple silicon only; "
    "use a remote model (`url:`) or an arm64 Mac"
)


@pytest.fixture
def on(monkeypatch):
    """Pretend to be ``(sys.platform, platform.machine())``; never under Rosetta unless told."""

    def set_(system: str, machine: str, rosetta: bool = False) -> None:
        monkeypatch.setattr(sys, "platform", system)
        monkeypatch.setattr(platform, "machine", lambda: machine)
        monkeypatch.setattr(support, "under_rosetta", lambda: rosetta)

    return set_


@pytest.fixture
def without(monkeypatch):
    """Make ``import NAME`` fail, as where the package is not installed."""

    def set_(*names: str) -> None:
        for name in names:
            monkeypatch.setitem(sys.modules, name, None)

    return set_


@pytest.mark.parametrize(
    ("system", "machine", "where"),
    [
        ("win32", "AMD64", ("win32", "x86_64")),
        ("win32", "ARM64", ("win32", "arm64")),
        ("darwin", "arm64", ("darwin", "arm64")),
        ("darwin", "x86_64", ("darwin", "x86_64")),
        ("linux", "x86_64", ("linux", "x86_64")),
        ("linux", "aarch64", ("linux", "arm64")),
    ],
)
def test_each_platform_has_one_name(on, system, machine, where):
    on(system, machine)
    assert support.this_platform() == where


@pytest.mark.parametrize(
    ("system", "machine"),
    [("win32", "AMD64"), ("win32", "ARM64"), ("darwin", "arm64"), ("linux", "x86_64"), ("linux", "aarch64")],
)
def test_foundry_is_available_where_it_has_a_build(on, system, machine):
    on(system, machine)
    assert foundry_support() == support.Support(True)
    assert genai_support() == support.Support(True)


def test_intel_mac_has_no_foundry_local(on):
    on("darwin", "x86_64")
    found = foundry_support()
    assert (found.available, found.no_build) == (False, True)
    assert found.reason == INTEL_MAC_LINE
    assert "`url:" in found.hint and "\n" not in found.hint
    with pytest.raises(ModelError) as raised:
        found.require()
    assert (raised.value.message, raised.value.exit_code) == (INTEL_MAC_LINE, ExitCode.MODEL)


def test_an_intel_python_under_rosetta_is_told_to_use_an_arm64_python(on):
    on("darwin", "x86_64", rosetta=True)
    found = foundry_support()
    assert found.no_build and "Rosetta" in found.reason
    assert "arm64 Python" in found.hint


def test_other_platforms_without_a_build_are_named(on):
    on("linux", "ppc64le")
    found = foundry_support()
    assert found.no_build
    assert found.reason == "Foundry Local has no build for linux on ppc64le; use a remote model (`url:`)"


def test_onnxruntime_genai_is_missing_on_intel_macos_only(on):
    on("darwin", "x86_64")
    assert genai_support().no_build
    assert "Intel macOS (x86_64)" in genai_support().reason
    with pytest.raises(ModelError, match="onnxruntime-genai has no build for Intel macOS"):
        require_genai()


@pytest.mark.parametrize(
    ("system", "machine", "available"),
    [
        ("win32", "AMD64", True),
        ("win32", "ARM64", False),
        ("darwin", "arm64", True),
        ("darwin", "x86_64", False),
        ("linux", "x86_64", True),
        ("linux", "aarch64", True),
    ],
)
def test_the_recipe_builder_needs_torch(on, system, machine, available):
    on(system, machine)
    found = builder_support()
    assert found.available is available and found.no_build is not available
    if not available:
        assert "torch" in found.reason and "bundled:tiny-fp32" in found.hint


def test_the_windows_on_arm_builder_hint_offers_an_x64_python(on):
    on("win32", "ARM64")
    assert "x64 Python" in builder_support().hint


def test_a_missing_sdk_is_an_install_problem_not_a_platform_fact(on, without):
    on("linux", "x86_64")
    without("foundry_local_sdk")
    found = foundry_support()
    assert (found.available, found.no_build) == (False, False)
    assert found.reason.startswith("Foundry Local is not installed in this Python")
    assert "pip install -e ." in found.hint
    with pytest.raises(ModelError, match="not installed"):
        require_foundry()


def test_a_package_that_fails_to_load_says_so_with_a_reinstall_hint(monkeypatch):
    real = support.importlib.import_module

    def broken(name, *args):
        if name == "onnxruntime_genai":
            raise OSError("libonnxruntime-genai.so: cannot open shared object file\nmore")
        return real(name, *args)

    monkeypatch.setattr(support.importlib, "import_module", broken)
    with pytest.raises(ModelError) as raised:
        require_genai()
    assert raised.value.message == (
        "onnxruntime-genai did not load: libonnxruntime-genai.so: cannot open shared object file"
    )
    assert "--force-reinstall --no-deps onnxruntime-genai==" in (raised.value.hint or "")


def test_rosetta_is_read_from_sysctl(monkeypatch):
    answers = {"1\n": True, "0\n": False, "": False}
    for stdout, translated in answers.items():
        done = subprocess.CompletedProcess([], 0, stdout=stdout, stderr="")
        monkeypatch.setattr(support.subprocess, "run", lambda *a, _done=done, **k: _done)
        assert support.under_rosetta() is translated

    def no_sysctl(*args, **kwargs):
        raise FileNotFoundError("sysctl")

    monkeypatch.setattr(support.subprocess, "run", no_sysctl)
    assert support.under_rosetta() is False


# --- At the point of use --------------------------------------------------------------------------


def test_the_foundry_provider_fails_in_one_line_without_touching_the_sdk(on, without, tmp_path):
    from ops.models.foundry import FoundryProvider

    on("darwin", "x86_64")
    without("foundry_local_sdk")
    runtime = FoundryProvider(tmp_path / "data", tmp_path / "logs")
    with pytest.raises(ModelError) as raised:
        runtime.start()
    assert raised.value.message == INTEL_MAC_LINE
    runtime.close()  # nothing started, nothing to close: no ImportError either


def test_the_device_choice_fails_in_one_line(on, without):
    from ops.runtime.device import choose_device

    on("darwin", "x86_64")
    without("onnxruntime_genai")
    with pytest.raises(ModelError, match="onnxruntime-genai has no build for Intel macOS"):
        choose_device()


def test_model_list_shows_the_reason_instead_of_the_catalog(on, without):
    from ops.models import manage
    from ops.settings import Settings

    on("darwin", "x86_64")
    without("foundry_local_sdk")
    settings = Settings.from_env()
    assert manage.local_rows(settings) == []
    assert manage.catalog_rows(settings) == ([], INTEL_MAC_LINE)


def _profile(tmp_path, models: str) -> str:
    path = tmp_path / "p.yaml"
    path.write_text(f"name: p\nmodels:\n{textwrap.indent(textwrap.dedent(models), '  ')}")
    return str(path)


def test_a_plan_to_serve_a_local_model_on_an_intel_mac_stops_in_one_line(on, tmp_path):
    from ops import plan

    on("darwin", "x86_64")
    ref = _profile(tmp_path, "tiny: {path: 'bundled:tiny-fp32'}\n")
    with pytest.raises(ModelError) as raised:
        plan.load(ref)
    assert raised.value.message == f"model 'tiny': {INTEL_MAC_LINE}"
    assert raised.value.hint == support.REMOTE_HINT
    # Commands that serve nothing (down, export, endpoint) still read the profile.
    assert plan.load(ref, ask_catalog=False).served == ("tiny",)


def test_a_remote_model_plan_works_and_an_optional_foundry_model_is_skipped(on, tmp_path, monkeypatch):
    from ops import plan

    on("darwin", "x86_64")
    monkeypatch.setenv("OPS_CATALOG_URL", "https://catalog.invalid/v1")  # never asked: skipped before
    ref = _profile(
        tmp_path,
        """\
        cloud: {url: 'https://example.invalid/v1'}
        phi: {catalog: phi-4-mini, optional: true}
        """,
    )
    models = {m.alias: m for m in plan.load(ref).models}
    assert models["cloud"].use and models["cloud"].source == "remote"
    assert (models["phi"].use, models["phi"].reason) == (False, f"skipped: {INTEL_MAC_LINE}")


def test_a_profile_of_optional_foundry_models_only_gets_the_remote_hint(on, tmp_path):
    from ops import plan

    on("darwin", "x86_64")
    ref = _profile(tmp_path, "phi: {catalog: phi-4-mini, optional: true}\n")
    with pytest.raises(ModelError) as raised:
        plan.load(ref)
    assert raised.value.message == f"no model of profile 'p' can be served: skipped: {INTEL_MAC_LINE}"
    assert raised.value.hint == support.REMOTE_HINT


# --- A machine without the packages, for real: a child process where importing them fails --------

CHILD = """
import json, sys
for name in {optional!r}:
    sys.modules[name] = None  # `import name` raises ImportError, as where pip left it out
from ops.models import support
support.this_platform = lambda: ("darwin", "x86_64")
support.under_rosetta = lambda: False
{body}
"""


def _child(body: str, *args: str) -> subprocess.CompletedProcess:
    code = CHILD.format(optional=OPTIONAL, body=textwrap.dedent(body))
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_every_module_of_ops_imports_without_the_platform_dependent_packages():
    done = _child(
        """
        import importlib, pkgutil, ops
        names = [m.name for m in pkgutil.walk_packages(ops.__path__, "ops.")]
        skip = ("ops.__main__",)  # runs the CLI
        failed = {}
        for name in names:
            if name in skip or ".bundled" in name or "._shipped" in name:
                continue
            try:
                importlib.import_module(name)
            except Exception as exc:
                failed[name] = repr(exc)
        print(json.dumps({"count": len(names), "failed": failed}))
        """
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["failed"] == {} and result["count"] > 100


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--help"], 0, "Bring up a private, on-device AI workshop"),
        (["validate", "workshop"], 0, ": ok"),
        (["model", "list", "offline", "--no-catalog"], 0, "smollm2"),
    ],
)
def test_the_cli_works_on_an_intel_mac(args, code, needle):
    done = _child("from ops.cli import main\nsys.exit(main(sys.argv[1:]))", *args)
    assert done.returncode == code, done.stderr
    assert needle in done.stdout
    assert "Traceback" not in done.stderr


def test_ops_up_on_an_intel_mac_says_why_in_one_line(tmp_path):
    ref = _profile(tmp_path, "tiny: {path: 'bundled:tiny-fp32'}\n")
    done = _child("from ops.cli import main\nsys.exit(main(sys.argv[1:]))", "up", ref)
    assert done.returncode == ExitCode.MODEL, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-2] == f"error: model 'tiny': {INTEL_MAC_LINE}"
    assert lines[-1].startswith("hint: give the profile's models `url: https://HOST/v1`")
    assert "Traceback" not in done.stderr
