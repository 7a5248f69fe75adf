"""``ops profiles``: list the profiles that can be named."""

from __future__ import annotations

import typer
from rich.table import Table

from ops import profiles as lib
from ops.cli import app, output


@app.command("profiles")
def profiles_command(
    json_: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the profiles found on the search path (OPS_PROFILE_PATH, ~/.config/ops/profiles, shipped)."""
    found = lib.discover()
    if json_:
        output.emit_json([{"name": r.name, "path": r.path, "description": r.description} for r in found])
        return
    table = Table("profile", "description", "file", box=None, header_style="bold")
    for ref in found:
        table.add_row(ref.name, ref.description, str(ref.path))
    output.out.print(table)
