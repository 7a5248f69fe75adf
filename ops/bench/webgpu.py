"""Benchmark the WebGPU demo in a real browser: page load to first prediction, wasm and WebGPU.

One Chromium (Debian's, never a downloaded build) is launched with ``--enable-unsafe-webgpu``, so
both execution providers run in the same browser session: each run opens the demo in a new tab
with ``?ep=wasm`` or ``?ep=webgpu`` and reads the page's own timings once its first prediction is
shown. A warm-up load (not counted) fills the HTTP cache first; then the two providers alternate,
so neither gets a warmer machine. Figures are medians over the runs.

Without ``--url`` the demo is assembled from ``stacks/webgpu-demo`` and served on 127.0.0.1 by its
own ``serve.py``, the same server the container runs. Run it as::

    ops bench-webgpu [--runs 5] [--url http://127.0.0.1:8502/] [--json]

It needs Playwright's Python package (a development dependency) and ``/usr/bin/chromium``
(``.ci/ensure-chromium`` installs it). The demo helpers here are shared with the e2e tests.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ops import paths
from ops.bench.stats import median
from ops.errors import OpsError
from ops.runtime.browser import WEBGPU_FLAG, launch_chromium
from ops.services.webgpu import RECIPE, load_once

SERVER_START_TIMEOUT_S = 15


@dataclass(frozen=True)
class EpFigures:
    """Medians of one execution provider's runs, in milliseconds, and every load time seen."""

    ep: str
    load_to_first_prediction_ms: float
    session_create_ms: float
    first_run_ms: float
    later_run_ms: float
    loads_ms: tuple[float, ...]


@dataclass(frozen=True)
class WebGPUBench:
    """Everything one benchmark run measured."""

    url: str
    browser: str
    ort_version: str
    adapter: str
    threads: int
    warmup_ms: float
    figures: tuple[EpFigures, ...]


def recipe_dir() -> Path:
    """The demo's recipe folder (``stacks/webgpu-demo``), in a checkout or an installed wheel."""
    return paths.shipped("stacks") / RECIPE


def assemble_site(out: Path) -> Path:
    """Assemble the demo (recipe + onnxruntime-web) into ``out`` with its script; return ``out/site``."""
    done = subprocess.run(
        [sys.executable, str(recipe_dir() / "assemble.py"), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise OpsError(
            f"cannot assemble the WebGPU demo: {done.stderr.strip() or done.stdout.strip()}",
            hint="assemble.py needs npm once (to fetch onnxruntime-web); `bash .ci/ensure-chromium` installs it.",
        )
    return out / "site"


@contextlib.contextmanager
def serve_site(root: Path, host: str = "127.0.0.1") -> Iterator[str]:
    """Run the demo's ``serve.py`` on ``root`` on a free port; yield its URL, stop it afterwards."""
    cmd = [sys.executable, str(recipe_dir() / "serve.py"), "--host", host, "--port", "0", "--root", str(root)]
    with (
        tempfile.TemporaryFile() as log,
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True) as server,
    ):
        try:
            assert server.stdout is not None
            # serve.py prints "serving URL from ROOT" once it listens, then nothing more on stdout.
            line = _read_line(server, SERVER_START_TIMEOUT_S)
            if not line.startswith("serving "):
                log.seek(0)
                raise OpsError(
                    f"the demo server did not start: {line or log.read().decode(errors='replace').strip()}",
                    hint=f"Run it by hand to see why: {' '.join(cmd)}",
                )
            yield line.split()[1]
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


def _read_line(process: subprocess.Popen, timeout: float) -> str:
    """First stdout line of ``process``, or "" when it exits or stays silent for ``timeout`` s."""
    import selectors

    stdout = process.stdout
    assert stdout is not None  # the server is started with stdout=PIPE
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return stdout.readline().strip()


def run(runs: int = 5, url: str | None = None, say: Callable[[str], None] = lambda _: None) -> WebGPUBench:
    """Measure the demo at ``url`` (default: assembled and served here) ``runs`` times per provider."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise OpsError(
            "Playwright's Python package is not installed",
            hint="pip install 'playwright==1.65.2' (a dev dependency); never run `playwright install`.",
        ) from exc
    with contextlib.ExitStack() as stack:
        if url is None:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ops-webgpu-bench-")))
            say("assembling the demo (onnxruntime-web from the npm cache)")
            url = stack.enter_context(serve_site(assemble_site(tmp / RECIPE)))
        say(f"serving {url}; launching Chromium with {WEBGPU_FLAG}")
        playwright = stack.enter_context(sync_playwright())
        browser = launch_chromium(playwright, webgpu=True)
        stack.callback(browser.close)
        context = browser.new_context()
        warmup = load_once(context, url, "wasm")
        states: dict[str, list[dict]] = {"wasm": [], "webgpu": []}
        for index in range(runs):
            say(f"run {index + 1}/{runs}")
            for ep in states:
                states[ep].append(load_once(context, url, ep))
        gpu = states["webgpu"][0].get("webgpu") or {}
        return WebGPUBench(
            url=url,
            browser=f"Chromium {browser.version}",
            ort_version=warmup.get("ortVersion", "unknown"),
            adapter=str(gpu.get("adapter", "none")),
            threads=int(warmup.get("threads", 1)),
            warmup_ms=warmup["timings"]["loadToFirstPredictionMs"],
            figures=tuple(_figures(ep, found) for ep, found in states.items()),
        )


def _figures(ep: str, states: list[dict]) -> EpFigures:
    timings = [s["timings"] for s in states]
    loads = tuple(round(t["loadToFirstPredictionMs"], 1) for t in timings)
    return EpFigures(
        ep=ep,
        load_to_first_prediction_ms=median(list(loads)),
        session_create_ms=median([t["sessionCreateMs"] for t in timings]),
        first_run_ms=median([t["firstRunMs"] for t in timings]),
        later_run_ms=median([t["laterRunsMedianMs"] for t in timings]),
        loads_ms=loads,
    )


def render(result: WebGPUBench) -> str:
    """The figures as plain text lines."""
    lines = [
        f"{result.browser}, onnxruntime-web {result.ort_version}, WebGPU adapter: {result.adapter}, "
        f"wasm threads: {result.threads}",
        f"demo at {result.url}; warm-up load (not counted) {result.warmup_ms:.0f} ms",
        f"{'ep':<8}{'load->1st prediction':>22}{'session create':>16}{'first run':>11}{'later runs':>12}  loads (ms)",
    ]
    for f in result.figures:
        lines.append(
            f"{f.ep:<8}{f.load_to_first_prediction_ms:>19.0f} ms{f.session_create_ms:>13.0f} ms"
            f"{f.first_run_ms:>8.1f} ms{f.later_run_ms:>9.2f} ms  {', '.join(f'{v:.0f}' for v in f.loads_ms)}"
        )
    lines.append(f"medians of {len(result.figures[0].loads_ms)} runs per provider, same browser session")
    return "\n".join(lines)
