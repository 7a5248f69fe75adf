"""``ops up PROFILE``: bring the stack up.

What exists so far: the profile is validated, the models to serve are chosen (catalog models
are skipped with a reason when the catalog cannot be reached), and the stack's secrets are
created. The model host and the containers come in the next steps and are reported as not
built yet, with a non-zero exit, rather than pretended.
"""

from __future__ import annotations

import typer

from ops import profiles as lib
from ops import stack
from ops.cli import app, output
from ops.errors import ExitCode


@app.command("up")
def up_command(
    profile: str = typer.Argument("workshop", help="Profile name (e.g. workshop) or path to a YAML file."),
) -> None:
    """Bring the stack of PROFILE up (models on the host, services in Docker)."""
    loaded = lib.load(profile)
    output.line(f"stack {loaded.name} from {loaded.path}")
    plans = stack.plan_models(loaded)
    for plan in plans:
        if plan.use:
            output.line(f"  model {plan.alias}: {plan.source} {plan.where}")
        else:
            output.note(f"  model {plan.alias}: {plan.reason}")
    state = stack.prepare_state(loaded.name)
    output.line(f"  state and secrets in {state.root}")
    output.note("not built yet: the model host and gateway, and the containers; nothing was started", style="bold yellow")
    raise typer.Exit(ExitCode.FAILURE)
