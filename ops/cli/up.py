"""``ops up PROFILE``: bring the stack up.

What exists so far: the profile is validated, the models to serve are chosen (catalog models
are skipped with a reason when the catalog cannot be reached), the stack's secrets are
created, and the model host with its gateway is started (or found running) and waited for.
The containers come next and are reported as not started yet, rather than pretended.
"""

from __future__ import annotations

import time

import typer

from ops import profiles as lib
from ops import stack
from ops.cli import app, output
from ops.errors import ExitCode
from ops.host import process
from ops.network import bind_addresses


@app.command("up")
def up_command(
    profile: str = typer.Argument("workshop", help="Profile name (e.g. workshop) or path to a YAML file."),
    timeout: float = typer.Option(900, help="Seconds to wait for the models to load."),
) -> None:
    """Bring the stack of PROFILE up (models on the host, services in Docker)."""
    started = time.monotonic()
    loaded = lib.load(profile)
    output.line(f"stack {loaded.name} from {loaded.path}")
    plans = stack.plan_models(loaded)
    for plan in plans:
        if plan.use:
            output.line(f"  model {plan.alias}: {plan.source} {plan.where}")
        else:
            output.note(f"  model {plan.alias}: {plan.reason}")
    state = stack.prepare_state(loaded.name)
    addresses, notice = bind_addresses(loaded.profile.gateway.bind, loaded.name)
    if notice:
        output.note(f"  {notice}")
    seen: dict[str, str] = {}

    def watch(health: dict) -> None:
        for alias, model_state in health.get("models", {}).items():
            detail = health.get("details", {}).get(alias) or model_state
            if seen.get(alias) != detail:
                seen[alias] = detail
                output.line(f"  model {alias}: {detail}", style="dim")

    info, reused = process.start(loaded, state, addresses, timeout=timeout, watch=watch)
    verb = "already running" if reused else "started"
    output.line(
        f"model host {verb} (pid {info.pid}), gateway on {', '.join(f'{a}:{info.port}' for a in info.addresses)}"
    )
    output.line(f"  base URL {info.url}/v1 - key in {state.secrets.path} (`ops endpoint {loaded.name}`)")
    output.line(f"ready in {time.monotonic() - started:.1f} s", style="green")
    services = list(loaded.profile.services)
    if services:
        output.note(
            f"not built yet: starting the containers ({', '.join(services)}); the model host and gateway are up",
            style="bold yellow",
        )
        raise typer.Exit(ExitCode.FAILURE)
