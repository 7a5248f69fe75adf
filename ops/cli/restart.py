"""``ops restart PROFILE [SERVICE]``: restart one service, the model host, or the whole stack."""

from __future__ import annotations

import typer

from ops import lifecycle
from ops import plan as stack_plan
from ops.cli import app, output


@app.command("restart")
def restart_command(
    profile: str = typer.Argument("workshop", help="Profile name or path."),
    service: str = typer.Argument(None, help="A service, or `host`; default: everything."),
) -> None:
    """Restart a service's container (or the model host), then wait until it is ready again."""
    plan = stack_plan.load(profile, ask_catalog=service is None or service == "host")
    report = lifecycle.restart(plan, service, say=lambda text: output.note(f"  {text}", style="dim"))
    if service is None:
        assert report is not None
        output.line(f"stack {plan.name} restarted, ready in {report.seconds:.1f} s")
    elif service == "host":
        output.line("model host restarted")
    else:
        output.line(f"{service}: restarted and ready")
