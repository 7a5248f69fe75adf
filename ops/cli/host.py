"""``ops host run|status``: the model host in the foreground, and what runs."""

from __future__ import annotations

import typer
from rich.table import Table

from ops import profiles as lib
from ops.cli import app, output
from ops.host import process
from ops.network import bind_addresses
from ops.settings import Settings
from ops.state import StackState

host_app = typer.Typer(
    help="The model host: Foundry Local in-process plus the gateway.", no_args_is_help=True
)
app.add_typer(host_app, name="host")


@host_app.command("run")
def run_command(
    profile: str = typer.Argument("workshop", help="Profile name or path."),
    bind: list[str] = typer.Option(
        None, "--bind", help="Address to listen on (repeatable); default from the profile."
    ),
) -> None:
    """Run the model host in the foreground (for debugging); Ctrl-C stops it."""
    from ops import logs
    from ops.host.server import serve

    logs.configure()
    loaded = lib.load(profile)
    current = process.status(StackState.for_stack(loaded.name))
    if current.running and current.info:
        from ops.errors import ConflictError

        raise ConflictError(
            f"the model host of stack {loaded.name} already runs (pid {current.info.pid})",
            hint=f"stop it with `ops down {loaded.name}` first",
        )
    addresses = list(bind) if bind else None
    if addresses is None:
        addresses, notice = bind_addresses(loaded.profile.gateway.bind, loaded.name)
        if notice:
            output.note(notice)
    serve(loaded, addresses)


@host_app.command("status")
def status_command(
    profile: str = typer.Argument(None, help="Profile name or path; default: every stack with state."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show whether each stack's model host runs, where, and its models' states."""
    settings = Settings.from_env()
    if profile:
        names = [lib.load(profile).name]
    else:
        from ops.inventory import known_stacks

        names = known_stacks(settings)
    statuses = [process.status(StackState.for_stack(name, settings)) for name in names]
    if json_:
        output.emit_json(statuses)
        return
    if not statuses:
        output.line("no stacks yet: `ops up PROFILE` starts one")
        return
    table = Table("stack", "host", "gateway", "models", box=None, header_style="bold")
    for s in statuses:
        state = "running" if s.running else "stale pid file" if s.stale else "stopped"
        if s.running and s.info:
            state += f" (pid {s.info.pid})"
        models = ", ".join(f"{a}: {m}" for a, m in (s.health or {}).get("models", {}).items())
        table.add_row(s.stack, state, s.info.url if s.running and s.info else "-", models or "-")
    output.out.print(table)
