"""The secrets store: generated once, kept with mode 0600, reused on every run, never printed.

A :class:`Secret` renders as ``********`` everywhere (``str``, ``repr``, f-strings, JSON
encoders that call ``str``); only :meth:`Secret.reveal` gives the value, and only code that
hands it to a process or an HTTP header should call it. Every value loaded or generated is
registered with :func:`redact`, which the CLI applies to anything it writes to a log.
"""

from __future__ import annotations

import json
import os
import secrets as _random
from collections.abc import Callable
from pathlib import Path

from ops.errors import OpsError
from ops.locks import file_lock
from ops.private import open_private, private_dir

MASK = "********"
_KNOWN: set[str] = set()


class Secret:
    """A secret value that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value
        if len(value) >= 6:  # too-short values would redact innocent text
            _KNOWN.add(value)

    def reveal(self) -> str:
        """The real value; pass it to a process or header, never to output."""
        return self._value

    def __str__(self) -> str:
        return MASK

    __repr__ = __str__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and _random.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


def redact(text: str) -> str:
    """Replace every known secret value in ``text`` with the mask."""
    for value in sorted(_KNOWN, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return text


def token(nbytes: int = 32) -> str:
    """A new random URL-safe secret."""
    return _random.token_urlsafe(nbytes)


class SecretStore:
    """A JSON file of named secrets for one stack, mode 0600 in a 0700 folder."""

    def __init__(self, path: Path):
        self.path = path

    def get(self, name: str) -> Secret | None:
        """The stored secret ``name``, or ``None``."""
        value = self._read().get(name)
        return Secret(value) if value is not None else None

    def get_or_create(self, name: str, generate: Callable[[], str] = token) -> Secret:
        """The stored secret ``name``; generated and stored first if absent.

        A file lock makes two concurrent ``ops`` processes agree on one value.
        """
        with self._locked():
            data = self._read()
            if name not in data:
                data[name] = generate()
                self._write(data)
            return Secret(data[name])

    def set(self, name: str, value: str) -> Secret:
        """Store ``value`` under ``name`` (replacing any previous one)."""
        with self._locked():
            data = self._read()
            data[name] = value
            self._write(data)
        return Secret(value)

    def names(self) -> list[str]:
        """The names of the stored secrets (never their values)."""
        return sorted(self._read())

    def with_prefix(self, prefix: str) -> dict[str, Secret]:
        """Every stored secret whose name starts with ``prefix``."""
        return {name: Secret(value) for name, value in self._read().items() if name.startswith(prefix)}

    def delete(self, *names: str) -> list[str]:
        """Remove the secrets ``names``; returns those that were there."""
        if not any(name in self._read() for name in names):
            return []
        with self._locked():
            data = self._read()
            gone = [name for name in names if name in data]
            if gone:
                for name in gone:
                    del data[name]
                self._write(data)
        return gone

    def stamp(self) -> tuple[int, int, int] | None:
        """Changes whenever the store is written (a write replaces the file): inode, size, mtime."""
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    def _read(self) -> dict[str, str]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise OpsError(
                f"cannot read the secrets store {self.path}: {exc.strerror}",
                hint="check the file's owner and permissions (it should be yours, mode 0600)",
            ) from None
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            raise OpsError(
                f"the secrets store {self.path} is corrupt",
                hint="move it away and run the command again; new secrets will be generated "
                "(containers that stored the old ones may need `ops down --volumes`)",
            ) from None
        for value in data.values():
            Secret(value)  # register for redaction
        return data

    def _write(self, data: dict[str, str]) -> None:
        private_dir(self.path.parent)
        tmp = self.path.with_suffix(".tmp")
        # Create with 0600 from the start: a chmod after writing would leave a window.
        fd = open_private(tmp, os.O_WRONLY | os.O_TRUNC)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def _locked(self):
        return file_lock(self.path.with_suffix(".lock"))
