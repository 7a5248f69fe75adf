"""A stack's state on this machine: its folder and the secrets every stack has.

What a stack *is* (its services, ports, images, models) is resolved once into a
:class:`~ops.plan.StackPlan`; the Docker labels its objects carry are in :mod:`ops.labels`.
"""

from __future__ import annotations

from ops.settings import Settings
from ops.state import StackState

#: Secrets every stack has; services add their own.
#: The stack's own key (the CLI's, the one ``ops endpoint`` gives): every gateway route, admin ones too.
GATEWAY_KEY = "gateway-key"
#: Each service's key: ``gateway-key:<service>``, handed to that service's container only. The gateway
#: takes it for the OpenAI routes (models, chat, embeddings), never for the ``/ops/`` admin routes.
#: Deleting the secret revokes it at once (the host reads the store again when it changes); the next
#: ``ops up`` then gives the service a new one, replacing its container.
SERVICE_KEY_PREFIX = GATEWAY_KEY + ":"
#: ``setup-done:<service>``: a service's one-time setup from its environment is done (Open WebUI's
#: admin was created), so the environment no longer carries what it needed. ``ops down --volumes``,
#: which deletes the data that setup made, forgets these.
SETUP_DONE_PREFIX = "setup-done:"
#: A participant's own gateway key (``participant-key:<name>``, inference only, counted as theirs) and
#: password (``participant-password:<name>``: Open WebUI and the Chainlit app); see ``ops.participants``.
PARTICIPANT_KEY_PREFIX = "participant-key:"
PARTICIPANT_PASSWORD_PREFIX = "participant-password:"


def participant_email(stack: str, name: str) -> str:
    """A participant's sign-in e-mail in Open WebUI (the gateway knows forwarded users by it)."""
    return f"{name}@participants.{stack}.ops.local"


def service_key(service: str) -> str:
    """The secret name of ``service``'s inference-only gateway key."""
    return SERVICE_KEY_PREFIX + service


def setup_done(service: str) -> str:
    """The secret name recording that ``service``'s one-time setup is done (see :data:`SETUP_DONE_PREFIX`)."""
    return SETUP_DONE_PREFIX + service


def prepare_state(stack: str, settings: Settings | None = None) -> StackState:
    """Create the stack's state folder and the secrets every stack needs (once; reused after)."""
    state = StackState.for_stack(stack, settings).ensure()
    state.secrets.get_or_create(GATEWAY_KEY)
    return state


def service_keys(state: StackState) -> list[str]:
    """The services that hold a gateway key of this stack (names only; values never leave the store)."""
    return sorted(
        name.removeprefix(SERVICE_KEY_PREFIX) for name in state.secrets.with_prefix(SERVICE_KEY_PREFIX)
    )


def revoke_key(state: StackState, service: str) -> bool:
    """Delete ``service``'s gateway key: the running host refuses it from the next request. True if it had one."""
    return bool(state.secrets.delete(service_key(service)))
