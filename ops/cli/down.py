"""``ops down PROFILE``: stop the stack (the model host so far; data is kept)."""

from __future__ import annotations

import typer

from ops import profiles as lib
from ops.cli import app, output
from ops.host import process
from ops.state import StackState


@app.command("down")
def down_command(profile: str = typer.Argument("workshop", help="Profile name or path.")) -> None:
    """Stop the stack of PROFILE; its secrets and data are kept."""
    loaded = lib.load(profile)
    if process.stop(StackState.for_stack(loaded.name)):
        output.line(f"model host of {loaded.name} stopped")
    else:
        output.line(f"model host of {loaded.name} was not running")
