"""The install matrix: ``ops-workshop[dev,gpu]`` resolves, wheels only, for each platform participants bring.

The ops wheel is built once (as ``pip install`` of a release gets it) and its full install is
resolved against the package index for Windows x64 and arm64, macOS on Apple silicon and Intel,
and Linux x86_64 and aarch64, on Python 3.11 and 3.12. Each resolution must succeed, and hold
exactly what ``pyproject.toml``'s markers intend there, which the test reads from the same
functions ``ops`` asks at run time (:mod:`ops.models.support`, the platform faked): no uvloop on
Windows, no Foundry Local on Intel macOS, Foundry Local everywhere else. The recipe builder's own
environment is resolved the same way.

uv resolves, not pip: ``pip install --dry-run --platform P`` picks wheels for ``P`` but evaluates
environment markers for the machine it runs on, so it would install uvloop "for Windows" here, and
leave out Windows' own packages (pywin32, colorama). ``uv pip compile --python-platform`` evaluates
both for the target. It needs the package index: without it the test fails in CI and skips elsewhere.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import platform
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from ops.models import support
from ops.models.recipes import builder_env
from tests.conftest import ROOT, missing

EXTRAS = "dev,gpu"


@dataclass(frozen=True)
class Target:
    """A platform as the wheel tags name it, as uv names it, and as this Python would see it."""

    tag: str
    triple: str  # uv's --python-platform
    system: str  # sys.platform there
    machine: str  # platform.machine() there
    pythons: tuple[str, ...]
    macos: str | None = None  # the oldest macOS to pick wheels for (MACOSX_DEPLOYMENT_TARGET)


TARGETS = (
    Target("win_amd64", "x86_64-pc-windows-msvc", "win32", "AMD64", ("3.11", "3.12")),
    # Windows on Arm: Python 3.12 or later (PyYAML has no cp311 win_arm64 wheel; see the limits below).
    Target("win_arm64", "aarch64-pc-windows-msvc", "win32", "ARM64", ("3.12", "3.13")),
    Target("macosx_14_0_arm64", "aarch64-apple-darwin", "darwin", "arm64", ("3.11", "3.12"), "14.0"),
    Target("macosx_13_0_x86_64", "x86_64-apple-darwin", "darwin", "x86_64", ("3.11", "3.12"), "13.0"),
    Target("manylinux_2_28_x86_64", "x86_64-manylinux_2_28", "linux", "x86_64", ("3.11", "3.12")),
    Target("manylinux_2_34_aarch64", "aarch64-manylinux_2_34", "linux", "aarch64", ("3.12",)),
)
BY_TAG = {t.tag: t for t in TARGETS}
CASES = [(t.tag, v) for t in TARGETS for v in t.pythons]
#: Installs that must fail, each on the package the README names for it (the platform limits).
LIMITS = {
    # Windows on Arm with Python 3.11: PyYAML 6.0.4 has no cp311-win_arm64 wheel.
    (Target("win_arm64", "aarch64-pc-windows-msvc", "win32", "ARM64", ("3.11",)), "3.11"): "pyyaml",
    # Apple silicon before macOS 14: onnxruntime 1.31 (Foundry's runtime) is built for macOS 14 and later.
    (Target("macosx_13_0_arm64", "aarch64-apple-darwin", "darwin", "arm64", ("3.12",), "13.0"), "3.12"): (
        "onnxruntime"
    ),
}


@dataclass(frozen=True)
class Resolution:
    """What one resolution gave: the packages (normalised name -> version or URL) or uv's error."""

    ok: bool
    packages: dict[str, str]
    error: str


def _uv(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "uv", *args],
        capture_output=True,
        text=True,
        timeout=600,
        input=stdin,
        env={**os.environ, **(env or {})},
    )


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _resolve(requirements: Path, target: Target, python: str, out: Path) -> Resolution:
    env = {"MACOSX_DEPLOYMENT_TARGET": target.macos} if target.macos else {}
    done = _uv(
        "pip",
        "compile",
        "--quiet",
        "--no-python-downloads",  # --python-version only names the target; any interpreter reads it
        "--no-header",
        "--no-annotate",
        "--only-binary",
        ":all:",
        "--python-platform",
        target.triple,
        "--python-version",
        python,
        str(requirements),
        "-o",
        str(out),
        env=env,
    )
    if done.returncode != 0:
        return Resolution(False, {}, done.stderr.strip())
    packages = {}
    for line in out.read_text(encoding="utf-8").splitlines():
        found = re.match(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)(?:\[[^]]*\])?\s*(?:==\s*(\S+)|@\s*(\S+))", line)
        if found:
            packages[_name(found[1])] = found[2] or found[3]
    return Resolution(True, packages, "")


@pytest.fixture(scope="module")
def index_reached():
    """uv is installed and the package index answers (uv asked afresh, not from its cache)."""
    done = _uv("--version")
    if done.returncode != 0:
        missing(f"uv (a dev dependency: pip install -e '.[dev]'): {done.stderr.strip()[:200]}")
    probe = _uv("pip", "compile", "--quiet", "--no-header", "--refresh-package", "pip", "-", stdin="pip\n")
    if probe.returncode != 0:
        missing(f"the package index (uv could not resolve `pip`: {probe.stderr.strip()[-300:]})")


@pytest.fixture(scope="module")
def ops_wheel(index_reached, tmp_path_factory) -> Path:
    """The ops wheel, built from this checkout as a release would be."""
    out = tmp_path_factory.mktemp("wheel")
    done = _uv(
        "build",
        "--quiet",
        "--no-python-downloads",
        "--python",
        sys.executable,
        "--wheel",
        "--out-dir",
        str(out),
        str(ROOT),
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = out.glob("ops_workshop-*.whl")
    return wheel


@pytest.fixture(scope="module")
def resolutions(ops_wheel, tmp_path_factory) -> dict[tuple[str, str, str], Resolution]:
    """Every resolution of the matrix, run in parallel: (what, platform tag, python) -> Resolution."""
    work = tmp_path_factory.mktemp("resolve")
    ops_in = work / "ops.in"
    ops_in.write_text(f"ops-workshop[{EXTRAS}] @ {ops_wheel.as_uri()}\n", encoding="utf-8")
    builder_in = work / "builder.in"
    builder_in.write_text("\n".join(builder_env.REQUIREMENTS) + "\n", encoding="utf-8")
    jobs = {("ops", tag, v): (ops_in, BY_TAG[tag], v) for tag, v in CASES}
    jobs |= {("builder", t.tag, t.pythons[-1]): (builder_in, t, t.pythons[-1]) for t in TARGETS}
    jobs |= {("ops", t.tag, v): (ops_in, t, v) for (t, v) in LIMITS}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = {
            key: pool.submit(_resolve, req, target, v, work / f"{key[0]}-{target.tag}-{v}.txt")
            for key, (req, target, v) in jobs.items()
        }
        return {key: future.result() for key, future in futures.items()}


@contextlib.contextmanager
def pretend(target: Target):
    """This Python as it would see ``target``: what ops.models.support answers there."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "platform", target.system)
        patch.setattr(platform, "machine", lambda: target.machine)
        patch.setattr(support, "under_rosetta", lambda: False)
        yield


@pytest.mark.parametrize(("tag", "python"), CASES)
def test_the_full_install_resolves_with_what_the_markers_intend(resolutions, tag, python):
    target = BY_TAG[tag]
    result = resolutions[("ops", tag, python)]
    assert result.ok, f"ops-workshop[{EXTRAS}] does not install on {tag}, Python {python}:\n{result.error}"
    with pretend(target):
        foundry, genai = support.foundry_support(), support.genai_support()
    has = result.packages
    windows, windows_arm = target.system == "win32", (target.system, target.machine) == ("win32", "ARM64")
    expected = {
        "ops-workshop": True,
        "foundry-local-sdk": not foundry.no_build,
        "onnxruntime": not foundry.no_build,  # the SDK pins it
        "onnxruntime-genai": not genai.no_build,
        "uvloop": not windows,
        "httptools": True,
        "rust-just": not windows_arm,
        "onnxruntime-genai-cuda": target.system == "linux" or (windows and not windows_arm),
        "uv": True,
        # Windows' own dependencies: proof that markers were read for the target, not for this machine.
        "pywin32": windows,  # docker's named-pipe transport
        "colorama": windows,  # click's and pytest's colours
    }
    assert {name: name in has for name in expected} == expected
    if not foundry.no_build:
        assert has["foundry-local-sdk"] == "2.2.1"


def test_foundry_local_is_left_out_exactly_where_it_has_no_build():
    """The matrix covers both sides: Intel macOS without Foundry Local, every other target with it."""
    without = []
    for target in TARGETS:
        with pretend(target):
            if support.foundry_support().no_build:
                without.append(target.tag)
    assert without == ["macosx_13_0_x86_64"]


@pytest.mark.parametrize("tag", [t.tag for t in TARGETS])
def test_the_recipe_builder_installs_where_builder_support_says(resolutions, tag):
    target = BY_TAG[tag]
    result = resolutions[("builder", tag, target.pythons[-1])]
    with pretend(target):
        expected = support.builder_support().available
    assert result.ok is expected, (
        result.error or f"the builder resolved on {tag}, but builder_support says no"
    )
    if not expected:
        assert "torch" in result.error


@pytest.mark.parametrize(("target", "python"), list(LIMITS), ids=[t.tag for t, _ in LIMITS])
def test_the_documented_limits_still_hold(resolutions, target, python):
    result = resolutions[("ops", target.tag, python)]
    assert not result.ok, f"{target.tag} with Python {python} installs now: update the README's limits"
    assert f"{LIMITS[(target, python)]}==" in result.error.lower()


def test_the_wheel_unpacks_on_windows_and_macos(ops_wheel):
    """Every path in the wheel is valid on Windows and distinct on a case-insensitive disk; no links."""
    with zipfile.ZipFile(ops_wheel) as wheel:
        infos = wheel.infolist()
    names = [info.filename for info in infos]
    for wanted in (
        "ops/_shipped/profiles/workshop.yaml",
        "ops/_shipped/stacks/chainlit-rag/Dockerfile",
        "ops/_shipped/stacks/open-webui/install-ca.sh",
        "ops/models/bundled/tiny-fp32/genai_config.json",
        "ops/models/support.py",
    ):
        assert wanted in names
    bad = [name for name in names if not portable(name)]
    assert bad == []
    folded: dict[str, str] = {}
    clashes = [(folded.setdefault(n.lower(), n), n) for n in names if folded.get(n.lower(), n) != n]
    assert clashes == []
    links = [info.filename for info in infos if (info.external_attr >> 16) & 0o170000 == 0o120000]
    assert links == []
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    crlf = [n for n in names if n.startswith("ops/_shipped/stacks/") and n.endswith((".sh", "Dockerfile"))]
    with zipfile.ZipFile(ops_wheel) as wheel:
        assert [n for n in crlf if b"\r\n" in wheel.read(n)] == []


WINDOWS_RESERVED = {
    "con",
    "prn",
    "aux",
    "nul",
    *(f"com{i}" for i in range(10)),
    *(f"lpt{i}" for i in range(10)),
}


def portable(path: str) -> bool:
    """A relative ``/`` path whose every part Windows accepts as a file name."""
    if path.startswith("/") or "\\" in path:
        return False
    for part in path.rstrip("/").split("/"):
        if part in ("", ".", "..") or re.search(r'[<>:"|?*\x00-\x1f]', part) or part[-1] in ". ":
            return False
        if part.split(".")[0].lower() in WINDOWS_RESERVED:
            return False
    return True
