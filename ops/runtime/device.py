"""The device in-process inference runs on: CUDA when the runtime and the machine have it, else CPU."""

from __future__ import annotations

import shutil

from ops.errors import OpsError
from ops.models.support import require_genai


def choose_device(requested: str = "auto") -> tuple[str, str]:
    """(device, reason): CUDA when onnxruntime-genai has it and an NVIDIA GPU is present, else CPU."""
    og = require_genai()  # a one-line ModelError where it has no build (Intel macOS) or is missing

    cuda = bool(getattr(og, "is_cuda_available", lambda: False)())
    gpu = shutil.which("nvidia-smi") is not None
    if requested == "cpu":
        return "cpu", "asked for"
    if requested == "cuda":
        if not cuda:
            raise OpsError(
                "CUDA asked for, but this onnxruntime-genai has no CUDA provider",
                hint="pip install 'ops-workshop[gpu]' (onnxruntime-genai-cuda) on a machine with an NVIDIA GPU",
            )
        return "cuda", "asked for"
    if cuda and gpu:
        return "cuda", "onnxruntime-genai-cuda and an NVIDIA GPU are present"
    return "cpu", "no CUDA provider in onnxruntime-genai" if not cuda else "no NVIDIA GPU found (nvidia-smi)"
