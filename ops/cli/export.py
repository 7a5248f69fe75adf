"""``ops export compose PROFILE``: the stack's containers as a docker-compose file."""

from __future__ import annotations

from pathlib import Path

import typer

from ops import lifecycle
from ops import plan as stack_plan
from ops.cli import app, output
from ops.compose import compose

export_app = typer.Typer(help="Export a stack for other tools.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("compose")
def compose_command(
    profile: str = typer.Argument("workshop", help="Profile name or path."),
    out: Path = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
) -> None:
    """Write a docker-compose file for the stack's containers (the model host stays on the host)."""
    text = compose(lifecycle.declared_specs(stack_plan.load(profile, ask_catalog=False)))
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    output.note(f"wrote {out}", style="green")
