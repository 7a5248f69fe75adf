"""``ops bench-webgpu``: the WebGPU demo in Chromium, page load to first prediction, wasm against WebGPU."""

from __future__ import annotations

import typer

from ops.cli import app, output


@app.command("bench-webgpu")
def webgpu_command(
    runs: int = typer.Option(5, "--runs", min=1, help="Page loads per execution provider."),
    url: str = typer.Option(None, "--url", help="A running demo (default: assemble and serve one here)."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Benchmark the WebGPU demo in Debian's Chromium: wasm vs WebGPU, medians over the runs."""
    from ops.bench import webgpu

    result = webgpu.run(runs, url, say=lambda text: output.note(text, style="dim"))
    if json_:
        output.emit_json(result)
        return
    for text in webgpu.render(result).splitlines():
        output.line(text)
