"""``ops keys list|revoke``: the services' gateway keys (names only), and taking one back."""

from __future__ import annotations

import typer

from ops import plan as stack_plan
from ops.cli import app, output
from ops.errors import UsageError
from ops.stack import revoke_key, service_keys
from ops.state import StackState

keys_app = typer.Typer(
    help="Each service's own gateway key (inference only): list them, or revoke one.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")


@keys_app.command("list")
def list_command(
    profile: str = typer.Argument("workshop", help="Profile name or path."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The services that hold a key of the stack's gateway (never the keys themselves)."""
    plan = stack_plan.load(profile, ask_catalog=False)
    state = StackState.for_stack(plan.name)
    held = service_keys(state)
    if json_:
        output.emit_json({"stack": plan.name, "store": str(state.secrets.path), "services": held})
        return
    if not held:
        output.line(f"no service of stack {plan.name} holds a key yet (`ops up {plan.name}` makes them)")
        return
    output.line(
        f"keys in {state.secrets.path} (inference only; the stack key is `ops endpoint {plan.name}`'s):"
    )
    for service in held:
        note = "" if service in plan.enabled else "  (not in the profile: `ops up` deletes it)"
        output.line(f"  gateway-key:{service}{note}")


@keys_app.command("revoke")
def revoke_command(
    profile: str = typer.Argument(..., help="Profile name or path."),
    service: str = typer.Argument(..., help="The service whose key to take back."),
) -> None:
    """Take a service's key back: the gateway refuses it from the next request; `ops up` makes a new one."""
    plan = stack_plan.load(profile, ask_catalog=False)
    state = StackState.for_stack(plan.name)
    if not revoke_key(state, service):
        held = service_keys(state)
        raise UsageError(
            f"service {service!r} of stack {plan.name} holds no key",
            hint=f"services with a key: {', '.join(held) or 'none'} (`ops keys list {profile}`)",
        )
    output.line(
        f"revoked the gateway key of {service}: refused from the next request. "
        f"`ops up {profile}` gives {service} a new key (its container is replaced)."
    )
