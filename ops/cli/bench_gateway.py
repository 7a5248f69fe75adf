"""``ops bench-gateway``: the same model in-process, through Foundry's web service and through the gateway."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ops.cli import app, output
from ops.cli.buildbar import build_recipe
from ops.errors import UsageError
from ops.settings import Settings


@app.command("bench-gateway")
def gateway_command(
    model: Path = typer.Option(None, "--model", help="Model folder (default: the bundled tiny-fp32)."),
    recipe: str = typer.Option(
        None, "--recipe", help="A model recipe instead of a folder (built if missing)."
    ),
    precision: str = typer.Option(None, "--precision", help="The recipe's precision (default: its own)."),
    max_tokens: int = typer.Option(256, "--max-tokens", min=2),
    runs: int = typer.Option(5, "--runs", min=1),
    samples: int = typer.Option(300, "--samples", min=10, help="Alternating requests for the added latency."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Same model in-process vs Foundry's web service vs the gateway: tokens/s, first token, added latency."""
    from ops.bench import gateway

    if recipe is not None:
        if model is not None:
            raise UsageError(
                "give --model or --recipe, not both", hint="--recipe builds or finds the folder itself"
            )
        model = Path(build_recipe(recipe, precision, Settings.from_env().cache).folder)
    result = gateway.run(model, max_tokens, runs, samples, say=lambda text: output.note(text, style="dim"))
    if json_:
        output.emit_json(
            {
                **result.__dict__,
                "kept_fraction": result.kept_fraction,
                "first_token_added_ms": result.first_token_added_ms,
                "batching_fraction": result.batching_fraction,
            }
        )
        return
    table = Table(
        "path", "tokens/s (end to end)", "first token (ms)", "tokens", "runs", box=None, header_style="bold"
    )
    for p in result.paths:
        table.add_row(p.path, f"{p.tokens_per_s:,.0f}", f"{p.first_token_ms:.1f}", str(p.tokens), str(p.runs))
    output.out.print(f"model {result.model}, {result.max_tokens} new tokens, streaming (medians)")
    output.out.print(table)
    output.line(f"gateway keeps {result.kept_fraction:.1%} of Foundry's streaming tokens/s (goal >= 97%)")
    output.line(
        f"one stream on the batching engine: {result.batching_fraction:.1%} of Foundry's tokens/s (goal: 95% or more); "
        "many streams: `ops bench --model A,B`"
    )
    output.line(
        f"first streamed token through the gateway: {result.first_token_added_ms:+.1f} ms against Foundry's own "
        "(goal within 5 ms)"
    )
    output.line(
        f"added latency per request over {result.latency_samples} requests: p50 {result.added_p50_ms:.2f} ms, "
        f"p99 {result.added_p99_ms:.2f} ms (goal p50 < 2 ms); direct p50 {result.direct_p50_ms:.2f} ms, "
        f"through the gateway {result.gateway_p50_ms:.2f} ms"
    )
    output.line(
        f"routing through a virtual model adds p50 {result.routing_added_p50_ms:.2f} ms, "
        f"p99 {result.routing_added_p99_ms:.2f} ms (goal p50 < 1 ms)"
    )
