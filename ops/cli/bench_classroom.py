"""``ops bench-classroom``: simulated participants with their own keys and think time, fair sharing on and off."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer
from rich.table import Table

from ops.cli import app, output
from ops.cli.buildbar import build_recipe
from ops.errors import UsageError
from ops.settings import Settings


@app.command("bench-classroom")
def classroom_command(
    participants: int = typer.Option(
        30, "--participants", min=2, max=500, help="Participants, the greedy one included."
    ),
    recipe: str = typer.Option(
        "smollm2-135m-instruct", "--recipe", help="The model recipe to serve (built if missing)."
    ),
    model: Path = typer.Option(None, "--model", help="A model folder instead of a recipe."),
    duration: float = typer.Option(60, "--duration", min=5, help="Seconds each of the four runs lasts."),
    think: float = typer.Option(
        5.0, "--think", min=0, help="Mean think time between a participant's messages (s)."
    ),
    max_tokens: int = typer.Option(32, "--max-tokens", min=1),
    greedy_streams: int = typer.Option(
        8, "--greedy-streams", min=1, help="Streams the greedy participant keeps open."
    ),
    objective: float = typer.Option(
        2.0, "--ttft-objective", min=0.01, help="TTFT objective for goodput (s)."
    ),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A room of participants on one host: TTFT, goodput and fairness, with and without a greedy one."""
    from ops.bench import classroom

    if model is None:
        model = Path(build_recipe(recipe, None, Settings.from_env().cache).folder)
    elif not model.is_dir():
        raise UsageError(f"no model folder at {model}", hint="give an ONNX Runtime GenAI folder, or --recipe")
    result = classroom.run(
        model,
        participants,
        duration,
        think,
        max_tokens,
        greedy_streams,
        objective,
        say=lambda text: output.note(text, style="dim"),
    )
    if json_:
        output.emit_json({**asdict(result), "rise": {s: result.rise(s) for s in classroom.SHARING}})
        return
    output.line(
        f"model {result.model}: {result.participants - 1} participants (think {result.think_s:g} s, "
        f"{result.max_tokens} tokens a message) + 1 greedy with {result.greedy_streams} streams, "
        f"{result.duration_s:g} s a run"
    )
    table = Table(
        "sharing",
        "greedy",
        "requests",
        "TTFT p50",
        "TTFT p95",
        "greedy p95",
        "goodput",
        "Jain",
        "tokens/s",
        "greedy share",
        "429s",
        box=None,
        header_style="bold",
    )
    for r in result.runs:
        table.add_row(
            r.sharing,
            "yes" if r.greedy else "no",
            str(r.requests),
            f"{r.others_ttft_p50_ms:,.0f} ms",
            f"{r.others_ttft_p95_ms:,.0f} ms",
            f"{r.greedy_ttft_p95_ms:,.0f} ms" if r.greedy else "-",
            f"{r.goodput:.0%}",
            f"{r.fairness:.2f}",
            f"{r.tokens_per_s:.0f}",
            f"{r.greedy_share:.0%}" if r.greedy else "-",
            str(r.refused),
        )
    output.out.print(table)
    output.line(
        f"TTFT p50/p95: the other participants'; goodput: their requests with a first token within "
        f"{result.objective_s:g} s; Jain: fairness index of every participant's tokens/s while waiting"
    )
    for sharing in classroom.SHARING:
        busy = result.run(sharing, True)
        output.line(
            f"sharing {sharing}: the greedy participant raised the others' TTFT p95 by {result.rise(sharing):+.0%} "
            f"(goal <= +25%), fairness {busy.fairness:.2f} (goal >= 0.9)"
            + (f"; never served: {', '.join(busy.unserved)}" if busy.unserved else "")
        )
