"""``ops doctor`` knows the platform: whether Foundry Local runs here, and what the profile then needs.

The platform is faked at its two sources, as in ``test_platform_support.py``.
"""

from __future__ import annotations

import platform
import sys

import pytest

from ops.doctor.context import DoctorContext
from ops.doctor.host import GpuCheck, PackagesCheck, PlatformCheck
from ops.doctor.models import RuntimeCheck
from ops.models import support

REMOTE_ONLY = """\
name: cloudy
models:
  gpt:
    url: https://models.example.com/v1
    api_key_env: EXAMPLE_KEY
services: {}
"""


@pytest.fixture
def intel_mac(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(support, "under_rosetta", lambda: False)


def test_on_this_machine_foundry_local_has_a_build():
    outcome = PlatformCheck().run(DoctorContext("offline"))
    assert outcome.status == "ok" and outcome.detail.endswith(
        "Foundry Local and onnxruntime-genai have builds for it"
    )


def test_an_intel_mac_fails_a_profile_with_local_models_and_says_what_to_do(intel_mac):
    outcome = PlatformCheck().run(DoctorContext("offline"))
    assert outcome.status == "fail"
    assert outcome.detail.startswith("Intel macOS (x86_64); Foundry Local has no build for Intel macOS")
    assert outcome.detail.endswith("the profile serves smollm2, smollm2-fp32 on this machine")
    assert outcome.fix == support.REMOTE_HINT


def test_an_intel_mac_is_fine_for_a_profile_of_remote_models(intel_mac, tmp_path):
    path = tmp_path / "cloudy.yaml"
    path.write_text(REMOTE_ONLY)
    outcome = PlatformCheck().run(DoctorContext(str(path)))
    assert outcome.status == "ok" and "every model of this profile is remote" in outcome.detail


def test_under_rosetta_the_fix_is_an_arm64_python(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(support, "under_rosetta", lambda: True)
    outcome = PlatformCheck().run(DoctorContext("offline"))
    assert outcome.status == "fail" and "running under Rosetta" in outcome.detail
    assert outcome.fix.startswith("install an arm64 Python")


def test_where_no_runtime_has_a_build_the_gpu_check_warns_instead_of_failing_on_an_import(intel_mac):
    outcome = GpuCheck().run(DoctorContext("offline"))
    assert outcome.status == "warn" and "no in-process runtime for smoke tests here" in outcome.detail


def test_the_runtime_check_is_skipped_where_foundry_has_no_build(intel_mac):
    outcome = RuntimeCheck().run(DoctorContext("offline"))
    assert outcome.status == "skipped" and "host.platform" in outcome.detail


def test_packages_left_out_by_a_platform_marker_are_not_missing(monkeypatch):
    """On Windows uvloop is not installed, on purpose: its marker is false there."""
    from importlib import metadata

    real = metadata.version

    def version(name: str) -> str:
        if name == "uvloop":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "version", version)
    monkeypatch.setattr(sys, "platform", "win32")
    assert PackagesCheck().run(DoctorContext(None)).status == "ok"
    monkeypatch.setattr(sys, "platform", "linux")  # where it has a build, a missing uvloop is a failure
    outcome = PackagesCheck().run(DoctorContext(None))
    assert outcome.status == "fail" and "uvloop" in outcome.detail
