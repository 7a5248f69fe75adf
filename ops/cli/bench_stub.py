"""``ops bench-stub``: a trivial, very fast OpenAI-compatible server; ``--overhead`` loads it to measure the load generator."""

from __future__ import annotations

import sys

import typer

from ops.cli import app, output
from ops.errors import UsageError


@app.command("bench-stub")
def stub_command(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(0, "--port", min=0, help="0 picks a free port (printed)."),
    chunks: int = typer.Option(5, "--chunks", min=1, help="Content chunks per streamed answer."),
    key: str = typer.Option(None, "--key", help="Require this bearer key."),
    delay_ms: float = typer.Option(0.0, "--delay-ms", min=0, help="Wait this long before each answer."),
    model: list[str] = typer.Option(
        None, "--model", help="A model name to serve (repeatable; default: stub)."
    ),
    overhead: bool = typer.Option(
        False,
        "--overhead",
        help="Instead of serving: load a stub with `ops bench`'s generator, print its cost.",
    ),
    concurrency: str = typer.Option("1,8,32", "--concurrency", help="Levels for --overhead."),
    requests: int = typer.Option(
        3000, "--requests", min=1, help="Counted requests per level for --overhead."
    ),
) -> None:
    """Serve a stub that answers chat completions at once (prints `serving URL`), or measure against one."""
    from ops.bench import stub

    if not overhead:

        def listening(url: str) -> None:
            # One plain line on stdout: `--overhead` and the tests read the URL from it.
            sys.stdout.write(f"serving {url}\n")
            sys.stdout.flush()

        stub.serve(host, port, tuple(model or ["stub"]), chunks, key, delay_ms, on_listening=listening)
        return
    try:
        levels = [int(c) for c in concurrency.split(",") if c.strip()]
    except ValueError:
        raise UsageError(
            f"--concurrency: expected numbers separated by commas, got {concurrency!r}"
        ) from None
    heads = ("concurrency", "req/s", "ceiling", "errors", "gen CPU", "gen us/req", "stub CPU", "e2e p50")
    output.line(" ".join(f"{h:>11}" for h in heads))
    for f in stub.overhead(levels, requests, chunks, delay_ms):
        ceiling = f"{f['ceiling_per_s']:.0f}" if f["ceiling_per_s"] else "-"
        cells = (
            f["concurrency"],
            f"{f['requests_per_s']:.0f}",
            ceiling,
            f["errors"],
            f"{f['generator_cpu_percent']:.0f}%",
            f"{f['generator_cpu_us_per_request']:.0f}",
            f"{f['stub_cpu_percent']:.0f}%",
            f"{f['e2e_p50_ms']:.1f} ms",
        )
        output.line(" ".join(f"{c:>11}" for c in cells))
    output.line(
        f"{requests} requests per level, {chunks} content chunks each, stub delay "
        f"{delay_ms:g} ms; CPU as a share of one core; ceiling = concurrency / delay"
    )
