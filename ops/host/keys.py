"""The services' and participants' gateway keys, as the running host knows them: read from the stack's secrets store.

``ops up`` makes one key per service (``gateway-key:<service>``, :mod:`ops.stack`) in the stack's
secrets store (mode 0600) and hands it to that service's container only; ``ops participants`` makes
one per participant (``participant-key:<name>``) and a password (``participant-password:<name>``).
The host never learns them from ``host.json`` (which holds no secret): it reads the store at start
and again whenever the file has changed since (one ``stat`` per request made with a key other than
the stack's). So a service or participant added while the host runs is let in without a restart,
and a key whose secret was deleted is refused from the next request on.
"""

from __future__ import annotations

import logging
import secrets

from ops.errors import OpsError
from ops.secrets import Secret, SecretStore
from ops.stack import PARTICIPANT_KEY_PREFIX, PARTICIPANT_PASSWORD_PREFIX, SERVICE_KEY_PREFIX

log = logging.getLogger("ops.host")


class StoreKeys:
    """``Authorization`` header value -> the name its key is stored under (less ``prefix``), kept in step with the store."""

    #: What the keys are, for the log line when the store cannot be read.
    what = "keys"

    def __init__(self, store: SecretStore, prefix: str):
        self.store = store
        self.prefix = prefix
        self._stamp: tuple[int, int, int] | None = None
        self._keys: dict[bytes, str] = {}
        self._refresh()

    def _refresh(self) -> None:
        stamp = self.store.stamp()
        if stamp is not None and stamp == self._stamp:
            return
        try:
            found = self.store.with_prefix(self.prefix)
        except OpsError as exc:  # unreadable or corrupt: keep what was known, say so, try again next time
            log.warning("%s not re-read: %s", self.what, exc.message)
            return
        self._keys = {
            f"Bearer {value.reveal()}".encode(): name.removeprefix(self.prefix)
            for name, value in found.items()
        }
        self._stamp = stamp

    def __call__(self, given: bytes) -> str | None:
        """Whose key ``given`` (``Bearer <key>``) is, or None."""
        self._refresh()
        found = None
        for expected, name in self._keys.items():  # compare with every key: no early exit
            if secrets.compare_digest(given, expected):
                found = name
        return found


class ServiceKeys(StoreKeys):
    """The services' inference-only keys: header value -> the service."""

    what = "service keys"

    def __init__(self, store: SecretStore):
        super().__init__(store, SERVICE_KEY_PREFIX)


class ParticipantKeys(StoreKeys):
    """The participants' keys: header value -> the participant; who is a participant now; their passwords."""

    what = "participant keys"

    def __init__(self, store: SecretStore):
        super().__init__(store, PARTICIPANT_KEY_PREFIX)

    def names(self) -> frozenset[str]:
        """The current participants: those whose key is in the store."""
        self._refresh()
        return frozenset(self._keys.values())

    def password(self, name: str) -> Secret | None:
        """``name``'s sign-in password (read from the store when asked: sign-ins are rare)."""
        try:
            return self.store.get(PARTICIPANT_PASSWORD_PREFIX + name)
        except OpsError as exc:
            log.warning("participant password not read: %s", exc.message)
            return None
