"""Which device `ops smoke` runs on: CUDA only when onnxruntime-genai has it and an NVIDIA GPU is here."""

from __future__ import annotations

import pytest

from ops.errors import OpsError
from ops.models.support import genai_support, require_genai
from ops.runtime.device import choose_device
from tests.conftest import missing

if genai_support().no_build:  # Intel macOS: the install leaves onnxruntime-genai out on purpose
    missing(f"onnxruntime-genai ({genai_support().reason})")  # fails in CI, skips on a laptop
onnxruntime_genai = require_genai()


@pytest.fixture
def machine(monkeypatch):
    def set_(cuda: bool, gpu: bool) -> None:
        monkeypatch.setattr(onnxruntime_genai, "is_cuda_available", lambda: cuda, raising=False)
        monkeypatch.setattr(
            "ops.runtime.device.shutil.which", lambda name: "/usr/bin/nvidia-smi" if gpu else None
        )

    return set_


@pytest.mark.parametrize(
    ("cuda", "gpu", "requested", "device", "reason"),
    [
        (True, True, "auto", "cuda", "onnxruntime-genai-cuda and an NVIDIA GPU are present"),
        (True, False, "auto", "cpu", "no NVIDIA GPU found (nvidia-smi)"),
        (False, True, "auto", "cpu", "no CUDA provider in onnxruntime-genai"),
        (False, False, "auto", "cpu", "no CUDA provider in onnxruntime-genai"),
        (True, True, "cpu", "cpu", "asked for"),
        (True, False, "cuda", "cuda", "asked for"),
    ],
)
def test_device_choice(machine, cuda, gpu, requested, device, reason):
    machine(cuda, gpu)
    assert choose_device(requested) == (device, reason)


def test_cuda_forced_without_the_cuda_build_is_an_error_with_the_fix(machine):
    machine(False, True)
    with pytest.raises(OpsError) as info:
        choose_device("cuda")
    assert "no CUDA provider" in info.value.message and "ops-workshop[gpu]" in info.value.hint
