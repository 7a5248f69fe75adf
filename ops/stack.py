"""A stack's state on this machine: its folder and the secrets every stack has.

What a stack *is* (its services, ports, images, models) is resolved once into a
:class:`~ops.plan.StackPlan`; the Docker labels its objects carry are in :mod:`ops.labels`.
"""

from __future__ import annotations

from ops.settings import Settings
from ops.state import StackState

#: Secrets every stack has; services add their own.
GATEWAY_KEY = "gateway-key"


def prepare_state(stack: str, settings: Settings | None = None) -> StackState:
    """Create the stack's state folder and the secrets every stack needs (once; reused after)."""
    state = StackState.for_stack(stack, settings).ensure()
    state.secrets.get_or_create(GATEWAY_KEY)
    return state
