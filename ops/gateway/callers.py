"""Who a request is from: the stack's admin, a participant, a service, or a user a service forwards.

* the stack's key (``ops endpoint``'s) -> ``admin``: every route;
* a participant's own key (``participant-key:<name>`` in the stack's secrets store) ->
  ``participant:<name>``: the OpenAI routes only;
* a service's key (``gateway-key:<service>``) -> ``service:<name>``: the OpenAI routes (and the
  Chainlit app's sign-in check), *unless* the request names the user the service acts for: Open
  WebUI's forwarded user headers (``ENABLE_FORWARD_USER_INFO_HEADERS=true``: ``X-OpenWebUI-User-Email``
  and its siblings) or the Chainlit app's ``X-Ops-User: <name>``. A participant's e-mail
  (:func:`ops.stack.participant_email`) or name is then that participant, an address in the
  participants' domain or an ``X-Ops-User`` that names nobody current is a removed participant
  (refused, so removing one shuts them out of every app at once), any other Open WebUI user is
  ``user:<email>``.

Forwarded headers are believed only with a service's key: anyone can send a header, only the
services hold their keys. Current participants are those whose key is in the store.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from starlette.requests import Request

from ops.gateway.errors import GatewayError
from ops.secrets import Secret
from ops.stack import participant_email

#: Open WebUI's forwarded user headers (its defaults; ``FORWARD_USER_INFO_HEADER_USER_EMAIL`` etc. rename them).
OPEN_WEBUI_EMAIL = "x-openwebui-user-email"
OPEN_WEBUI_NAME = "x-openwebui-user-name"
#: The Chainlit app's header: the participant it signed in.
OPS_USER = "x-ops-user"


@dataclass(frozen=True)
class Caller:
    """Who asked: ``id`` is what usage, quotas and sharing count by."""

    id: str
    participant: str | None = None
    #: The stack's key: may use the ``/ops/`` admin routes.
    admin: bool = False
    #: The service whose key the request carried (also when it forwarded a user).
    service: str | None = None


ADMIN = Caller("admin", admin=True)


class Participants(Protocol):
    """The participants as the store has them now (:class:`ops.host.keys.ParticipantKeys`)."""

    def __call__(self, given: bytes) -> str | None:
        """The participant whose key ``given`` (``Bearer <key>``) is, or None."""

    def names(self) -> frozenset[str]:
        """Every current participant."""
        ...

    def password(self, name: str) -> Secret | None:
        """``name``'s sign-in password, or None."""


class Callers:
    """Tells who a request is from, and whether they may use the route."""

    def __init__(
        self,
        stack: str,
        key: Secret,
        service_key: Callable[[bytes], str | None] | None = None,
        participants: Participants | None = None,
    ):
        self.expected = f"Bearer {key.reveal()}".encode()
        self.service_key = service_key
        self.participants = participants
        # Every participant's e-mail ends so (the local part is the name): see ops.stack.participant_email.
        self.domain = participant_email(stack, "x").removeprefix("x")

    def identify(self, request: Request, admin: bool = False, services_too: bool = False) -> Caller:
        """The caller of ``request``; raises 401 (no or a wrong key) or 403 (not allowed here, removed).

        ``admin``: an ``/ops/`` route, for the stack's key only (and a service's when ``services_too``).
        """
        given = request.headers.get("authorization", "").encode()
        if not given:
            raise GatewayError(
                401, "missing API key: send `Authorization: Bearer <stack key>`", code="invalid_api_key"
            )
        if secrets.compare_digest(given, self.expected):
            return ADMIN
        service = self.service_key(given) if self.service_key else None
        if service is not None:
            if admin and not services_too:
                raise GatewayError(
                    403,
                    f"the key of service {service!r} may only run models; {request.url.path} needs the stack "
                    "key (`ops endpoint`)",
                    code="insufficient_permissions",
                )
            if admin:
                return Caller(f"service:{service}", service=service)
            return self._forwarded(request, service)
        participant = self.participants(given) if self.participants else None
        if participant is None:
            raise GatewayError(
                401,
                "invalid API key (see `ops endpoint` for where the key is stored)",
                code="invalid_api_key",
            )
        if admin:
            raise GatewayError(
                403,
                f"participant {participant!r}'s key may only run models; {request.url.path} needs the stack "
                "key (`ops endpoint`)",
                code="insufficient_permissions",
            )
        return Caller(f"participant:{participant}", participant=participant)

    def _forwarded(self, request: Request, service: str) -> Caller:
        """The user a service's request acts for (a participant, another user), or the service itself."""
        named = request.headers.get(OPS_USER, "").strip()
        email = request.headers.get(OPEN_WEBUI_EMAIL, "").strip().lower()
        if named:
            name = named.lower()
        elif email.endswith(self.domain):
            name = email.removesuffix(self.domain)
        elif email:
            return Caller(f"user:{email}", service=service)
        else:
            return Caller(f"service:{service}", service=service)
        current = self.participants.names() if self.participants else frozenset()
        if name not in current:
            raise GatewayError(
                403,
                f"participant removed: {named or email!r} is not a participant of this workshop (any more)",
                code="participant_removed",
            )
        return Caller(f"participant:{name}", participant=name, service=service)

    def sign_in(self, username: object, password: object) -> str | None:
        """The participant whose name and password these are, or None (the same work either way)."""
        name = username.strip().lower() if isinstance(username, str) else ""
        given = password.encode() if isinstance(password, str) else b""
        current = self.participants.names() if self.participants else frozenset()
        stored = self.participants.password(name) if self.participants and name in current else None
        # Compare with something even for an unknown name, so the time says nothing about which part was wrong.
        expected = stored.reveal().encode() if stored is not None else secrets.token_bytes(24)
        matches = secrets.compare_digest(given, expected)
        return name if matches and stored is not None and given else None
