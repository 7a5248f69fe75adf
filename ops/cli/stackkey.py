"""The stack a command names, with its state and gateway key, or one error saying to run ``ops up`` first."""

from __future__ import annotations

from ops import plan as stack_plan
from ops.errors import OpsError
from ops.plan import StackPlan
from ops.secrets import Secret
from ops.stack import GATEWAY_KEY
from ops.state import StackState


def load_with_key(profile: str, missing: str = "key") -> tuple[StackPlan, StackState, Secret]:
    """The profile's plan, its stack state and the stack's gateway key; ``stack NAME has no MISSING yet`` if none."""
    plan = stack_plan.load(profile, ask_catalog=False)
    state = StackState.for_stack(plan.name)
    key = state.secrets.get(GATEWAY_KEY)
    if key is None:
        raise OpsError(f"stack {plan.name} has no {missing} yet", hint=f"run `ops up {plan.name}` first")
    return plan, state, key
