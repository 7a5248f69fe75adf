"""Debian's Chromium, headless and quiet on the network, launched through Playwright.

Never a downloaded build: ``/usr/bin/chromium`` (``.ci/ensure-chromium`` installs it). Used by
``ops smoke``'s browser step, the browser benchmarks and the e2e tests.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ops.errors import OpsError

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
# Headless as root on a machine with no GPU and no display, and quiet on the network: the
# background services would otherwise try Google's servers, which also pollutes request logs.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# With no GPU this gives WebGPU's software adapter (SwiftShader); without it requestAdapter() is null.
WEBGPU_FLAG = "--enable-unsafe-webgpu"


def find_chromium() -> Path | None:
    """Debian's Chromium, or None when it is not installed."""
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    found = shutil.which("chromium")
    return Path(found) if found else None


def chromium_args(webgpu: bool) -> list[str]:
    """Command-line flags for a headless, network-quiet Chromium; ``webgpu`` adds WebGPU."""
    return [*CHROMIUM_FLAGS, *([WEBGPU_FLAG] if webgpu else [])]


def launch_chromium(playwright, webgpu: bool, executable: Path | None = None):
    """Launch Debian's Chromium through Playwright (which makes a fresh user-data-dir)."""
    executable = executable or find_chromium()
    if executable is None:
        raise OpsError(
            "Chromium is not installed (looked for /usr/bin/chromium)",
            hint="Install Debian's chromium: `bash .ci/ensure-chromium` as root, or apt-get install chromium.",
        )
    return playwright.chromium.launch(
        executable_path=str(executable), headless=True, args=chromium_args(webgpu)
    )
