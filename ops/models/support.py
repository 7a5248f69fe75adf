"""What of the model stack this machine can run: Foundry Local, onnxruntime-genai, the recipe builder.

PyPI has no build of some of them for some platforms, so ``pyproject.toml``'s environment markers
leave them out there and ``ops`` installs without them (``tests/integration/test_install_matrix.py``
resolves the install for each platform and checks it against the functions here):

* ``foundry-local-sdk`` 2.2.1 and ``onnxruntime-genai`` 0.18.0: Windows x64 and arm64, macOS on
  Apple silicon, Linux x86_64 and aarch64; **not Intel macOS**. There ``ops`` serves only models of
  another OpenAI-compatible server (``url:`` in a profile).
* torch 2.13, which the recipe builder installs in its own environment: Windows x64, macOS on Apple
  silicon, Linux x86_64 and aarch64; **not Windows on Arm, not Intel macOS**.

Each fact lives in one function here; the code that needs the package calls it at the point of use
(``require()`` raises a one-line :class:`~ops.errors.ModelError` with a hint), and doctor reports it.
Nothing here imports the packages it asks about except :func:`require_foundry` and
:func:`require_genai`, which callers use right before they need the module.
"""

from __future__ import annotations

import importlib
import importlib.util
import platform
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType

from ops.errors import ModelError

#: (sys.platform, machine) pairs PyPI has wheels for, per package (machine as :func:`machine` names it).
FOUNDRY_BUILDS = frozenset(
    {("win32", "x86_64"), ("win32", "arm64"), ("darwin", "arm64"), ("linux", "x86_64"), ("linux", "arm64")}
)
GENAI_BUILDS = FOUNDRY_BUILDS
TORCH_BUILDS = frozenset({("win32", "x86_64"), ("darwin", "arm64"), ("linux", "x86_64"), ("linux", "arm64")})

_NAMES = {
    ("darwin", "x86_64"): "Intel macOS (x86_64)",
    ("darwin", "arm64"): "macOS on Apple silicon (arm64)",
    ("win32", "x86_64"): "Windows x64",
    ("win32", "arm64"): "Windows on Arm (arm64)",
    ("linux", "x86_64"): "Linux x86_64",
    ("linux", "arm64"): "Linux on arm64 (aarch64)",
}
REMOTE_HINT = (
    "give the profile's models `url: https://HOST/v1` instead (an OpenAI-compatible server: Foundry Local "
    "on another machine, or a cloud endpoint with `api_key_env:`); `ops validate`, `ops doctor` and the "
    "Docker services work here"
)


@dataclass(frozen=True)
class Support:
    """Whether a part of the model stack can run in this Python on this machine, and if not why.

    ``no_build`` is True when PyPI has no build of it for this platform at all: expected, nothing
    to repair here (the install left it out on purpose). Otherwise an unavailable part is missing or
    broken in this environment, and ``hint`` says how to install it.
    """

    available: bool
    reason: str = ""
    hint: str = ""
    no_build: bool = False

    def require(self) -> None:
        """Raise a :class:`ModelError` (the reason, one line, and the hint) unless available."""
        if not self.available:
            raise ModelError(self.reason, hint=self.hint)


def machine() -> str:
    """This Python's processor architecture, one name per kind: ``x86_64``, ``arm64``, ...

    Windows says ``AMD64``/``ARM64`` and Linux ``aarch64``; an x86_64 Python under Rosetta or
    Windows' emulation says ``x86_64``, as the wheels it can load do.
    """
    name = platform.machine().lower()
    return {"amd64": "x86_64", "x64": "x86_64", "aarch64": "arm64"}.get(name, name)


def this_platform() -> tuple[str, str]:
    """``(sys.platform, machine())``, with every Linux called ``linux``."""
    system = "linux" if sys.platform.startswith("linux") else sys.platform
    return system, machine()


def describe(where: tuple[str, str]) -> str:
    """A platform as a person calls it: ``Intel macOS (x86_64)``."""
    return _NAMES.get(where, f"{where[0]} on {where[1]}")


def under_rosetta() -> bool:
    """True when this is an Intel Python translated by Rosetta on an Apple silicon Mac."""
    try:
        done = subprocess.run(
            ["sysctl", "-n", "sysctl.proc_translated"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.stdout.strip() == "1"


def foundry_support() -> Support:
    """Whether Foundry Local (``foundry-local-sdk``) can run here; if not, why and what to do.

    Asks the platform first (no build for Intel macOS, which includes an Intel Python under Rosetta),
    then whether the package is installed. It does not import the SDK (importing adds a logging
    handler on stdout): :func:`require_foundry` does, right before use.
    """
    where = this_platform()
    if where not in FOUNDRY_BUILDS:
        if where == ("darwin", "x86_64") and under_rosetta():
            return Support(
                False,
                "this Python is an Intel (x86_64) build running under Rosetta, and Foundry Local has no "
                "build for Intel macOS: it serves Apple silicon only",
                "install an arm64 Python (python.org's macOS installer, or Homebrew's in /opt/homebrew), "
                "make the venv again with it and reinstall ops (`python3 -m venv .venv` then "
                "`.venv/bin/pip install -e '.[dev]'`)",
                no_build=True,
            )
        if where == ("darwin", "x86_64"):
            reason = (
                "Foundry Local has no build for Intel macOS (x86_64): it serves Apple silicon only; "
                "use a remote model (`url:`) or an arm64 Mac"
            )
        else:
            reason = f"Foundry Local has no build for {describe(where)}; use a remote model (`url:`)"
        return Support(False, reason, REMOTE_HINT, no_build=True)
    return _installed("foundry_local_sdk", "foundry-local-sdk", "Foundry Local")


def genai_support() -> Support:
    """Whether onnxruntime-genai can run models in this process (``ops smoke``, in-process benchmarks)."""
    where = this_platform()
    if where not in GENAI_BUILDS:
        return Support(
            False,
            f"onnxruntime-genai has no build for {describe(where)}, so no model runs in this process here",
            "`ops smoke` and the in-process benchmarks need Windows, Linux or an Apple silicon Mac; the "
            "gateway's checks (`ops doctor`) work with remote models",
            no_build=True,
        )
    return _installed("onnxruntime_genai", "onnxruntime-genai", "onnxruntime-genai")


def builder_support() -> Support:
    """Whether the recipe builder's environment (torch, transformers, the ONNX exporter) installs here.

    It is a separate environment (``ops.models.recipes.builder_env``), so only the platform counts.
    """
    where = this_platform()
    if where in TORCH_BUILDS:
        return Support(True)
    return Support(
        False,
        f"recipe models are built with torch, which has no build for {describe(where)}",
        "use a catalog model (`catalog:`) or a bundled one (`path: bundled:tiny-fp32`), or build the "
        "recipe on another machine and copy its folder here (`path:`)"
        + ("; an x64 Python (emulated) can build it too" if where == ("win32", "arm64") else ""),
        no_build=True,
    )


def require_foundry() -> ModuleType:
    """The ``foundry_local_sdk`` module, or a :class:`ModelError` saying why it cannot be had here."""
    foundry_support().require()
    return _load("foundry_local_sdk", "foundry-local-sdk")


def require_genai() -> ModuleType:
    """The ``onnxruntime_genai`` module, or a :class:`ModelError` saying why it cannot be had here."""
    genai_support().require()
    return _load("onnxruntime_genai", "onnxruntime-genai")


def _installed(module: str, dist: str, what: str) -> Support:
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that fails, or a module object without a spec
        found = False
    if found:
        return Support(True)
    return Support(
        False,
        f"{what} is not installed in this Python ({sys.executable}): {dist} is missing",
        f"install ops with its dependencies: `{sys.executable} -m pip install -e .` in the ops checkout "
        "(or reinstall ops-workshop)",
    )


def _load(module: str, dist: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except (ImportError, OSError) as exc:  # a native library that does not load raises OSError
        first = (str(exc).strip() or type(exc).__name__).splitlines()[0]
        try:
            pin = f"=={metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            pin = ""
        raise ModelError(
            f"{dist} did not load: {first}",
            hint=f"reinstall it: `{sys.executable} -m pip install --force-reinstall --no-deps {dist}{pin}`",
        ) from None
