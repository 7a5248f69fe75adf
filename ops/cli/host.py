"""``ops host run|status``: the model host in the foreground, and what runs."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ops import profiles as lib
from ops.cli import app, output
from ops.errors import UsageError
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
    config: Path = typer.Option(
        None, "--config", help="Serve what this host.json says (written by `ops up`); PROFILE is then unused."
    ),
) -> None:
    """Run the model host in the foreground (for debugging); Ctrl-C stops it."""
    from ops import logs
    from ops.host.config import HostConfig
    from ops.host.server import serve

    logs.configure()
    if config is not None:
        try:
            resolved = HostConfig.read(config)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(
                f"cannot read the host configuration {config}: {exc}",
                hint="it is written by `ops up`; to run a host by hand, give a profile instead",
            ) from None
        serve(resolved)
        return
    from ops import plan as stack_plan

    the_plan = stack_plan.load(profile)
    current = process.status(StackState.for_stack(the_plan.name))
    if current.running and current.info:
        from ops.errors import ConflictError

        raise ConflictError(
            f"the model host of stack {the_plan.name} already runs (pid {current.info.pid})",
            hint=f"stop it with `ops down {the_plan.name}` first",
        )
    addresses = list(bind) if bind else None
    if addresses is None:
        addresses, notice = bind_addresses(the_plan.gateway.bind, the_plan.name)
        if notice:
            output.note(notice)
    serve(HostConfig.from_plan(the_plan, addresses))


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
