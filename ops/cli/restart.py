"""``ops restart PROFILE [SERVICE]``: restart one service, or the whole stack."""

from __future__ import annotations

import typer

from ops import lifecycle, reconcile
from ops import profiles as lib
from ops.cli import app, output
from ops.errors import UsageError


@app.command("restart")
def restart_command(
    profile: str = typer.Argument("workshop", help="Profile name or path."),
    service: str = typer.Argument(None, help="A service, or `host`; default: everything."),
) -> None:
    """Restart a service's container (or the model host), then wait until it is ready again."""
    loaded = lib.load(profile)
    if service is None:
        lifecycle.down(loaded)
        report = lifecycle.up(loaded, say=lambda text: output.note(f"  {text}", style="dim"))
        output.line(f"stack {loaded.name} restarted, ready in {report.seconds:.1f} s")
        return
    if service == "host":
        from ops.host import process
        from ops.state import StackState

        process.stop(StackState.for_stack(loaded.name))
        lifecycle.up(loaded, say=lambda text: output.note(f"  {text}", style="dim"))
        output.line("model host restarted")
        return
    from ops.docker_engine import connect

    found = reconcile.containers(connect(), loaded.name)
    if service not in found:
        raise UsageError(
            f"stack {loaded.name} has no service {service!r}",
            hint=f"services: host, {', '.join(sorted(found))}",
        )
    found[service].restart(timeout=10)
    output.line(f"{service}: restarted")
