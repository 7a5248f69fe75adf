r"""The state directory of a stack: secrets, pid and log files, under ``OPS_HOME``.

Layout: ``<home>/stacks/<stack>/`` holding ``secrets.json`` (0600), ``host.pid``,
``host.json``, ``host.log`` and whatever else a stack needs to remember between runs. The home
is ``$OPS_HOME`` or the platform's state folder (:mod:`ops.settings`): ``$XDG_STATE_HOME/ops``
(``~/.local/state/ops``) on Linux, ``~/Library/Application Support/ops`` on macOS,
``%LOCALAPPDATA%\ops`` on Windows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ops.errors import UsageError
from ops.private import private_dir, tighten
from ops.secrets import SecretStore
from ops.settings import Settings

_STACK_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


def check_stack_name(name: str) -> str:
    """Return ``name`` if it is usable as a stack (and Docker label/name prefix)."""
    if not _STACK_NAME.match(name):
        raise UsageError(
            f"invalid stack name {name!r}",
            hint="use lower-case letters, digits, '-', '_' or '.', starting with a letter or digit",
        )
    return name


@dataclass(frozen=True)
class StackState:
    """Paths of one stack's state; folders are created on first use with mode 0700."""

    name: str
    root: Path

    @classmethod
    def for_stack(cls, name: str, settings: Settings | None = None) -> StackState:
        """The state of stack ``name`` under the configured home."""
        settings = settings or Settings.from_env()
        return cls(check_stack_name(name), settings.home / "stacks" / name)

    def ensure(self) -> StackState:
        """Create the state folder if missing, and every folder above it that ops creates, 0700; return self."""
        private_dir(self.root)
        # Folders an older ops made 0755 (mkdir's mode reached the last folder only): the home,
        # stacks/ and this stack's folder are ops's own, so make them private too.
        for folder in (self.root, self.root.parent, self.root.parent.parent):
            tighten(folder)
        return self

    @property
    def secrets(self) -> SecretStore:
        """The stack's secrets store."""
        return SecretStore(self.root / "secrets.json")

    @property
    def pid_file(self) -> Path:
        """Pid file of the stack's model host."""
        return self.root / "host.pid"

    @property
    def host_config(self) -> Path:
        """What the stack's model host serves, as ``ops up`` resolved it (see ``ops.host.config``)."""
        return self.root / "host.json"

    @property
    def usage_db(self) -> Path:
        """The gateway's usage records (SQLite): who used which model, how much; kept across restarts."""
        return self.root / "usage.sqlite"

    @property
    def log_file(self) -> Path:
        """Log file of the stack's model host."""
        return self.root / "host.log"


def crash_log(settings: Settings | None = None) -> Path:
    """Where unexpected tracebacks are written (redacted)."""
    settings = settings or Settings.from_env()
    return settings.home / "crash.log"
