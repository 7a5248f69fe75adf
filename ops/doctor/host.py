"""The ``host`` group: the profile, Python and packages, disk, memory, and the GPU."""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata

from packaging.requirements import Requirement

from ops.doctor import BaseCheck, Outcome, fail, ok, register, warn
from ops.doctor.context import DoctorContext, nearest_existing

GiB = 1024**3
#: Below this much free space where models live, downloads and model loads fail.
DISK_FAIL_BYTES = 2 * GiB
DISK_WARN_BYTES = 5 * GiB
#: Open WebUI alone takes about 1 GiB; the models come on top.
MEMORY_FAIL_BYTES = 1 * GiB
MEMORY_WARN_BYTES = 4 * GiB
DISTRIBUTION = "ops-workshop"
#: Shown first in the detail: the packages the stack's behaviour depends on most.
KEY_PACKAGES = ("foundry-local-sdk", "onnxruntime", "onnxruntime-genai", "docker", "httpx")
_PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;]+)$")


@register
class ProfileCheck(BaseCheck):
    """The profile exists and is valid (model folders are left to ``models.files``)."""

    name = "host.profile"
    group = "host"

    def run(self, ctx: DoctorContext) -> Outcome:
        if ctx.loaded is None:
            error = ctx.profile_error
            return fail(
                error.message if error else "no profile given",
                (error.hint if error and error.hint else "name a profile")
                + f"; `ops validate {ctx.profile_ref or 'PROFILE'}` lists every problem",
            )
        models = ", ".join(ctx.loaded.profile.models)
        services = ", ".join(ctx.service_kinds()) or "none"
        extra = "; its model folders are checked by models.files" if ctx.folder_problems else ""
        return ok(
            f"stack {ctx.loaded.name} from {ctx.loaded.path}: models {models}; services {services}{extra}"
        )


@register
class PythonCheck(BaseCheck):
    """The interpreter is one ``ops`` supports."""

    name = "host.python"
    group = "host"

    def run(self, ctx: DoctorContext) -> Outcome:
        # ops does not import on an older Python, so reaching this line proves 3.11 or newer.
        version = ".".join(map(str, sys.version_info[:3]))
        return ok(f"Python {version} at {sys.executable} (ops needs 3.11 or newer)")


@register
class PlatformCheck(BaseCheck):
    """The system and processor, and whether Foundry Local runs here (on macOS: Apple silicon only)."""

    name = "host.platform"
    group = "host"

    def run(self, ctx: DoctorContext) -> Outcome:
        from ops.models import support

        where = support.describe(support.this_platform())
        foundry = support.foundry_support()
        if foundry.available:
            return ok(f"{where}: Foundry Local and onnxruntime-genai have builds for it")
        plan = ctx.plan
        local = [m.alias for m in plan.models if m.source != "remote"] if plan else []
        if not local and plan is not None:
            return ok(f"{where}; {foundry.reason}; every model of this profile is remote, so none is needed")
        serves = f"; the profile serves {', '.join(local)} on this machine" if local else ""
        return fail(f"{where}; {foundry.reason}{serves}", foundry.hint)


@register
class PackagesCheck(BaseCheck):
    """Every pinned dependency is installed at its pinned version."""

    name = "host.packages"
    group = "host"

    def run(self, ctx: DoctorContext) -> Outcome:
        try:
            requirements = metadata.requires(DISTRIBUTION) or []
            own = metadata.version(DISTRIBUTION)
        except metadata.PackageNotFoundError:
            return fail(
                f"{DISTRIBUTION} is not installed in {sys.prefix}",
                f"`{sys.executable} -m pip install -e .` from the repository",
            )
        pins = {}
        # Asked now, not from packaging's per-process cache of the environment.
        here = {"extra": "", "sys_platform": sys.platform, "platform_machine": platform.machine()}
        for line in requirements:
            requirement = Requirement(line)
            # An extra's packages, and those this platform has no build of (its marker is false), are not needed.
            if requirement.marker is not None and not requirement.marker.evaluate(here):
                continue
            match = _PIN.match(f"{requirement.name}{requirement.specifier}")
            if match:
                pins[match[1]] = match[2]
        missing, wrong, seen = [], [], {}
        for name, wanted in pins.items():
            try:
                seen[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                missing.append(f"{name}=={wanted}")
                continue
            if seen[name] != wanted:
                wrong.append(f"{name} {seen[name]} (pinned {wanted})")
        install = f"`{sys.executable} -m pip install " + " ".join(
            f"'{n}=={pins[n]}'" for n in pins if n not in seen or seen[n] != pins[n]
        )
        if missing:
            return fail(f"missing: {', '.join(missing)}", install + "`")
        key = ", ".join(f"{n} {seen[n]}" for n in KEY_PACKAGES if n in seen)
        if wrong:
            return warn(f"ops {own}; not the pinned versions: {', '.join(wrong)}", install + "`")
        return ok(f"ops {own}; {key}; all {len(pins)} pins match")


@register
class DiskCheck(BaseCheck):
    """Free space where ops keeps its state and the Foundry model cache."""

    name = "host.disk"
    group = "host"

    def run(self, ctx: DoctorContext) -> Outcome:
        where = nearest_existing(ctx.settings.home / "foundry")
        free = shutil.disk_usage(where).free
        detail = f"{free / GiB:.1f} GiB free in {where} (state and model cache, OPS_HOME)"
        fix = "free some space there, or set OPS_HOME to a disk with room (models take 0.1-5 GiB each)"
        if free < DISK_FAIL_BYTES:
            return fail(detail, fix)
        if free < DISK_WARN_BYTES:
            return warn(detail, fix)
        return ok(detail)


@register
class MemoryCheck(BaseCheck):
    """Enough memory for Open WebUI and the models."""

    name = "host.memory"
    group = "host"

    def run(self, ctx: DoctorContext) -> Outcome:
        import psutil

        memory = psutil.virtual_memory()
        detail = f"{memory.available / GiB:.1f} GiB available of {memory.total / GiB:.1f} GiB"
        fix = "close other programs, or run fewer services (`enabled: false`) and smaller models"
        if memory.available < MEMORY_FAIL_BYTES:
            return fail(detail, fix)
        if memory.available < MEMORY_WARN_BYTES:
            return warn(detail, fix)
        return ok(detail)


@register
class GpuCheck(BaseCheck):
    """An NVIDIA GPU and driver, the CUDA provider of onnxruntime-genai, and the device smoke tests use."""

    name = "host.gpu"
    group = "host"

    def run(self, ctx: DoctorContext) -> Outcome:
        from ops.models.support import genai_support
        from ops.runtime.device import choose_device

        genai = genai_support()
        if not genai.available:
            outcome = warn if genai.no_build else fail
            return outcome(f"{genai.reason}; no in-process runtime for smoke tests here", genai.hint)
        gpu = nvidia_gpu()
        device, why = choose_device("auto")
        import onnxruntime_genai as og

        cuda = bool(getattr(og, "is_cuda_available", lambda: False)())
        both = _installed("onnxruntime-genai") and _installed("onnxruntime-genai-cuda")
        uses = f"smoke tests run on {device} ({why})"
        if both:
            return warn(
                f"{gpu or 'no NVIDIA GPU'}; both onnxruntime-genai and onnxruntime-genai-cuda are installed, "
                f"so which one is imported is down to install order; {uses}",
                f"`{sys.executable} -m pip uninstall -y onnxruntime-genai` then "
                f"`{sys.executable} -m pip install --force-reinstall onnxruntime-genai-cuda`",
            )
        if gpu and not cuda:
            return warn(
                f"{gpu}, but this onnxruntime-genai has no CUDA provider; {uses}",
                f"`{sys.executable} -m pip install -e '.[gpu]'` (adds onnxruntime-genai-cuda), "
                "then uninstall onnxruntime-genai",
            )
        if cuda and not gpu:
            return warn(
                f"onnxruntime-genai has CUDA, but no NVIDIA GPU or driver was found (nvidia-smi, NVML); {uses}",
                "install the NVIDIA driver so that `nvidia-smi` works, or use the CPU build",
            )
        if gpu:
            return ok(f"{gpu}; CUDA provider in onnxruntime-genai; {uses}")
        # The model host runs on the CPU on Linux anyway (Foundry's SDK has no CUDA provider there).
        return ok(f"no NVIDIA GPU found (nvidia-smi, NVML); {uses}")


def nvidia_gpu() -> str | None:
    """``NAME (driver X)`` of the first NVIDIA GPU, from nvidia-smi or else NVML; ``None`` when none."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run(
                [smi, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=10,
            )
        except (OSError, subprocess.TimeoutExpired):
            out = None
        if out is not None and out.returncode == 0 and out.stdout.strip():
            name, driver, memory = (part.strip() for part in out.stdout.splitlines()[0].split(",")[:3])
            return f"{name}, {memory} (driver {driver})"
    return _nvml_driver()


def _nvml_driver() -> str | None:
    """The driver version through NVML itself: it is there even where nvidia-smi is not (containers)."""
    import ctypes

    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return None
    if nvml.nvmlInit_v2() != 0:
        return None
    try:
        buffer = ctypes.create_string_buffer(80)
        count = ctypes.c_uint(0)
        if nvml.nvmlSystemGetDriverVersion(buffer, 80) != 0 or nvml.nvmlDeviceGetCount_v2(
            ctypes.byref(count)
        ):
            return None
        return f"{count.value} NVIDIA GPU(s) (driver {buffer.value.decode()})" if count.value else None
    finally:
        nvml.nvmlShutdown()


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True
