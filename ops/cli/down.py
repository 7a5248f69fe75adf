"""``ops down PROFILE [--volumes]``: stop the stack; data is kept unless asked."""

from __future__ import annotations

import typer

from ops import lifecycle
from ops.cli import app, output
from ops.errors import ExitCode
from ops.plan import resolve
from ops.profiles.loader import load_leniently


@app.command("down")
def down_command(
    profile: str = typer.Argument("workshop", help="Profile name or path."),
    volumes: bool = typer.Option(
        False, "--volumes", help="Also delete the stack's data volumes (asks first)."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before deleting volumes."),
) -> None:
    """Stop the model host and remove the stack's containers and network; volumes survive unless --volumes."""
    # A stack whose model folder is gone must still come down: only that problem is set aside.
    loaded, error, _folders = load_leniently(profile)
    if loaded is None:
        assert error is not None  # load_leniently() returns the error whenever it returns no profile
        raise error
    if (
        volumes
        and not yes
        and not typer.confirm(
            f"Delete every data volume of stack {loaded.name} (chats, users, indexes)?", default=False
        )
    ):
        output.note("nothing deleted")
        raise typer.Exit(ExitCode.FAILURE)
    report = lifecycle.down(resolve(loaded, ask_catalog=False), remove_volumes=volumes)
    output.line(f"model host of {loaded.name} {'stopped' if report.host_stopped else 'was not running'}")
    for name in report.containers:
        output.line(f"{name}: removed")
    if report.network_removed:
        output.line("network removed")
    for name in report.volumes:
        output.line(f"volume {name}: deleted")
    if not volumes:
        output.line("volumes kept (`ops down --volumes` deletes them)", style="dim")
