"""The services' gateway keys, as the running host knows them: read from the stack's secrets store.

``ops up`` makes one key per service (``gateway-key:<service>``, :mod:`ops.stack`) in the stack's
secrets store (mode 0600) and hands it to that service's container only. The host never learns
them from ``host.json`` (which holds no secret): it reads the store at start and again whenever
the file has changed since (one ``stat`` per request made with a key other than the stack's). So a
service added by ``ops up`` is let in without restarting the host, and a key whose secret was
deleted is refused from the next request on.
"""

from __future__ import annotations

import logging
import secrets

from ops.errors import OpsError
from ops.secrets import SecretStore
from ops.stack import SERVICE_KEY_PREFIX

log = logging.getLogger("ops.host")


class ServiceKeys:
    """``Authorization`` header value -> the service whose key it is, kept in step with the store."""

    def __init__(self, store: SecretStore):
        self.store = store
        self._stamp: tuple[int, int, int] | None = None
        self._keys: dict[bytes, str] = {}
        self._refresh()

    def _refresh(self) -> None:
        stamp = self.store.stamp()
        if stamp is not None and stamp == self._stamp:
            return
        try:
            found = self.store.with_prefix(SERVICE_KEY_PREFIX)
        except OpsError as exc:  # unreadable or corrupt: keep what was known, say so, try again next time
            log.warning("service keys not re-read: %s", exc.message)
            return
        self._keys = {
            f"Bearer {value.reveal()}".encode(): name.removeprefix(SERVICE_KEY_PREFIX)
            for name, value in found.items()
        }
        self._stamp = stamp

    def __call__(self, given: bytes) -> str | None:
        """The service whose key ``given`` (``Bearer <key>``) is, or None."""
        self._refresh()
        found = None
        for expected, service in self._keys.items():  # compare with every key: no early exit
            if secrets.compare_digest(given, expected):
                found = service
        return found
