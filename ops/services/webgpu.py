"""The WebGPU demo: its files served right (checked by `ops up`), and a prediction in a real browser (`ops smoke`)."""

from __future__ import annotations

import httpx

from ops.errors import OpsError

KIND = RECIPE = "webgpu-demo"
PAGE_TIMEOUT_MS = 60_000
#: Path -> content type the browser needs; a wrong .wasm or .mjs type breaks ONNX Runtime Web.
FILES = {
    "/": "text/html",
    "/main.js": "text/javascript",
    "/model/digits.onnx": "",
    "/ort/ort.wasm.min.mjs": "text/javascript",
    "/ort/ort-wasm-simd-threaded.wasm": "application/wasm",
}


def check_files(base_url: str, timeout: float = 10) -> list[str]:
    """Problems with the page, model and runtime files (empty when all is served right)."""
    problems = []
    with httpx.Client(base_url=base_url, timeout=timeout) as client:
        for path, expected in FILES.items():
            try:
                response = client.get(path)
            except httpx.HTTPError as exc:
                problems.append(f"{path}: {type(exc).__name__}")
                continue
            kind = response.headers.get("content-type", "").split(";")[0]
            if response.status_code != 200:
                problems.append(f"{path}: HTTP {response.status_code}")
            elif expected and kind != expected:
                problems.append(f"{path}: served as {kind or 'no type'}, needs {expected}")
            if path == "/" and response.headers.get("cross-origin-embedder-policy") != "require-corp":
                problems.append("/: no COOP/COEP headers (wasm threads need them)")
    return problems


def chain(ctx, base_url: str, timeout: float):
    """`ops up`'s end-to-end check: every file the page needs is served with the right type."""
    from ops.services import ChainReport

    problems = check_files(base_url, timeout=min(timeout, 10))
    if problems:
        raise OpsError(
            f"the WebGPU demo serves its files wrongly: {'; '.join(problems)}",
            hint=f"rebuild: `ops images build PROFILE {KIND}`",
        )
    return ChainReport((), "", f"{len(FILES)} files served with the right types")


def load_once(context, url: str, ep: str) -> dict:
    """Open the demo with ``?ep=ep`` in a new tab of ``context``; return the page's state when ready."""
    page = context.new_page()
    try:
        page.goto(f"{url}?ep={ep}", wait_until="load", timeout=PAGE_TIMEOUT_MS)
        state = page.evaluate("window.ortDemo.ready")
    finally:
        page.close()
    if state.get("status") != "ready" or state.get("ep") != ep:
        raise OpsError(
            f"the demo did not run on {ep}: status {state.get('status')}, ep {state.get('ep')}, "
            f"error {state.get('error')}",
            hint="Open the page in a browser to read its troubleshooting section.",
        )
    return state


def browser_prediction(base_url: str, ep: str = "wasm") -> dict:
    """Load the page in Debian's Chromium and return its state after the first prediction."""
    from playwright.sync_api import sync_playwright

    from ops.runtime.browser import launch_chromium

    with sync_playwright() as api:
        browser = launch_chromium(api, webgpu=ep == "webgpu")
        try:
            context = browser.new_context()
            return load_once(context, base_url, ep)
        finally:
            browser.close()


def browser_check(base_url: str) -> tuple[str, dict[str, str]]:
    """``ops smoke``'s browser step: the page predicts a digit on wasm in Chromium."""
    state = browser_prediction(base_url.rstrip("/") + "/", "wasm")
    return f"predicted on {state.get('ep')}", {"ep": str(state.get("ep"))}
