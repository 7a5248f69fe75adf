"""``ops status [PROFILE] [--json]``: the model host, containers and volumes of a stack."""

from __future__ import annotations

import typer
from rich.table import Table

from ops import inventory
from ops import profiles as lib
from ops.cli import app, output


@app.command("status")
def status_command(
    profile: str = typer.Argument(None, help="Profile name or path; default: every stack on this machine."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show what runs: the model host and its models, each container, the volumes, where secrets are."""
    names = [lib.load(profile).name] if profile else inventory.known_stacks()
    result = [inventory.status(name) for name in names]
    if json_:
        output.emit_json(result)
        return
    if not result:
        output.line("no stacks yet: `ops up PROFILE` starts one")
    for st in result:
        host = st.host
        state = (
            f"running (pid {host.info.pid}) at {host.info.url}/v1"
            if host.running and host.info
            else "stale pid file"
            if host.stale
            else "stopped"
        )
        output.line(f"stack {st.stack}", style="bold")
        output.line(f"  model host  {state}")
        serving = (host.health or {}).get("serving", {})
        for alias, model_state in (host.health or {}).get("models", {}).items():
            path = f" (served by {serving[alias]})" if alias in serving else ""
            output.line(f"    {alias}: {model_state}{path}")
        if st.docker != "ok":
            output.note(f"  docker: {st.docker}")
        if st.containers:
            table = Table(
                "service",
                "state",
                "health",
                "restarts",
                "ports",
                "image",
                box=None,
                header_style="bold",
                padding=(0, 2),
            )
            for c in st.containers:
                table.add_row(c.service, c.state, c.health, str(c.restarts), ", ".join(c.ports), c.image)
            output.out.print(table)
        if st.volumes:
            output.line(f"  volumes     {', '.join(st.volumes)}")
        output.line(f"  secrets     {st.secrets_file} (gateway key, Open WebUI admin sign-in)")
