"""The running host's record: its pid file, with the digest of what it serves.

Kept apart from ``ops.host.server`` so that what only reads the record (``ops status``, doctor,
starting the host as a child process) does not import the server (uvicorn, starlette, the providers).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HostInfo:
    """What a running host writes into its pid file."""

    pid: int
    port: int
    addresses: tuple[str, ...]
    profile: str
    started: float
    #: Digest of what the host serves (models, gateway settings): a change means a restart.
    fingerprint: str = ""
    #: The process's start time (``psutil.Process.create_time``) and exact argv (``cmdline``): a
    #: pid that the system gave to another process since does not match both, and is never signalled.
    create_time: float = 0.0
    argv: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        """Base URL of the gateway as seen from this machine."""
        address = "127.0.0.1" if "127.0.0.1" in self.addresses else self.addresses[0]
        return f"http://{address}:{self.port}"

    @classmethod
    def read(cls, path: Path) -> HostInfo | None:
        """The info in ``path``, or ``None`` when absent or unreadable."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                int(data["pid"]),
                int(data["port"]),
                tuple(data["addresses"]),
                data["profile"],
                data["started"],
                data.get("fingerprint", ""),
                float(data.get("create_time", 0.0)),
                tuple(str(a) for a in data.get("argv", ())),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, path: Path) -> None:
        """Write the info atomically."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({**self.__dict__, "addresses": list(self.addresses), "argv": list(self.argv)}),
            encoding="utf-8",
        )
        os.replace(tmp, path)
