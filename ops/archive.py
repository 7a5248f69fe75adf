"""The one archive format of ``ops backup`` and ``ops bundle``: a tar with a checked manifest.

An archive is a plain (optionally gzip-compressed) tar file. Its members are the payload, under
any relative path, and, last, ``MANIFEST.json``::

    {"format": "ops-archive", "version": 1, "kind": "backup" | "bundle",
     "created": "2026-12-01T07:00:00Z", "ops_version": "...", "meta": {...},
     "files": {"volumes/open-webui-data.tar": {"size": 123, "sha256": "..."}, ...},
     "seal": "hex HMAC-SHA256 of the manifest without it, or absent"}

The manifest comes last because each file's SHA-256 is known only once it has been written.
:func:`verify` reads the whole archive once and checks every member against the manifest (a
missing, extra, short or changed member, or a torn tar, is refused with one line) **before** a
caller changes anything; :func:`read_members` then reads it a second time to use it.

A manifest can be *sealed* with a key (``ops backup`` derives one from the passphrase): a checksum
only detects corruption, a seal also detects a manifest rewritten to match changed files.

Writing goes to ``FILE.part`` and is renamed at the end, so an interrupted write never leaves a file
that looks like a whole archive.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import io
import json
import os
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import ops
from ops.errors import OpsError

FORMAT = "ops-archive"
VERSION = 1
MANIFEST = "MANIFEST.json"
_CHUNK = 1 << 20

#: Called with the bytes just written or read, for progress bars.
Progress = Callable[[int], None]


class ArchiveError(OpsError):
    """An archive that is not whole, not ours, or was changed: nothing was changed by reading it."""


@dataclass(frozen=True)
class Manifest:
    """What an archive says it holds (``files``: member path -> (size, sha256))."""

    kind: str
    created: str
    ops_version: str
    meta: dict[str, Any]
    files: dict[str, tuple[int, str]]
    sealed: bool = False

    @property
    def payload_bytes(self) -> int:
        """The size of every member but the manifest."""
        return sum(size for size, _ in self.files.values())


@dataclass
class ArchiveWriter:
    """Write an archive: ``add_*`` each member, then :meth:`close` (or use it as a context manager)."""

    path: Path
    kind: str
    meta: dict[str, Any] = field(default_factory=dict)
    compress: bool = False
    seal_key: bytes | None = None
    progress: Progress | None = None

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self._part = self.path.with_name(self.path.name + ".part")
        self._files: dict[str, tuple[int, str]] = {}
        fd = os.open(self._part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._raw = os.fdopen(fd, "wb")
        self._tar = tarfile.open(  # noqa: SIM115  (closed by close() or abort())
            fileobj=self._raw, mode="w|gz" if self.compress else "w|", format=tarfile.PAX_FORMAT
        )

    def add_file(self, name: str, source: Path) -> None:
        """Add the file ``source`` as member ``name``."""
        with open(source, "rb") as f:
            self.add_stream(name, f, os.fstat(f.fileno()).st_size)

    def add_bytes(self, name: str, data: bytes) -> None:
        """Add ``data`` as member ``name``."""
        self.add_stream(name, io.BytesIO(data), len(data))

    def add_stream(self, name: str, stream: IO[bytes], size: int) -> None:
        """Add exactly ``size`` bytes read from ``stream`` as member ``name`` (hashed as they pass)."""
        _check_name(name)
        if name in self._files or name == MANIFEST:
            raise ValueError(f"member {name!r} added twice")
        hashing = _Hashing(stream, self.progress)
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, 0o600, int(dt.datetime.now(dt.UTC).timestamp())
        self._tar.addfile(info, hashing)
        if hashing.count != size:
            raise OpsError(
                f"{name}: {hashing.count} bytes read, {size} expected (the source changed while copied)"
            )
        self._files[name] = (size, hashing.digest.hexdigest())

    def close(self) -> Manifest:
        """Write the manifest and give the archive its name; returns the manifest."""
        manifest = Manifest(
            kind=self.kind,
            created=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            ops_version=ops.__version__,
            meta=self.meta,
            files=dict(self._files),
            sealed=self.seal_key is not None,
        )
        body = _manifest_json(manifest)
        if self.seal_key is not None:
            body["seal"] = _seal(self.seal_key, body)
        data = json.dumps(body, indent=1, sort_keys=True).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mode, info.mtime = len(data), 0o600, int(dt.datetime.now(dt.UTC).timestamp())
        self._tar.addfile(info, io.BytesIO(data))
        self._tar.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        os.replace(self._part, self.path)
        return manifest

    def abort(self) -> None:
        """Forget a half-written archive (its ``.part`` file is removed)."""
        with contextlib.suppress(OSError, tarfile.TarError):
            self._tar.close()
        self._raw.close()
        self._part.unlink(missing_ok=True)

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def verify(
    path: Path, kind: str | None = None, seal_key: bytes | None = None, progress: Progress | None = None
) -> Manifest:
    """Read the whole archive and check every member against its manifest; nothing is extracted.

    Raises :class:`ArchiveError` (one line, with a hint) for a file that is not an ops archive,
    a torn or truncated tar, a member missing, extra, of another size or checksum, an archive of
    another ``kind``, or (with ``seal_key``) a seal that does not match.
    """
    path = Path(path)
    if not path.is_file():
        raise ArchiveError(
            f"no archive at {path}", hint="give the path of a file `ops backup` or `ops bundle create` wrote"
        )
    seen: dict[str, tuple[int, str]] = {}
    body: dict[str, Any] | None = None
    try:
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                if not member.isfile():
                    raise ArchiveError(
                        f"{path.name}: member {member.name!r} is not a regular file", hint=_TAMPERED
                    )
                stream = tar.extractfile(member)
                assert stream is not None  # a regular file always has one
                if member.name == MANIFEST:
                    body = _parse_manifest(path, stream.read(16 << 20))
                    continue
                if body is not None:
                    raise ArchiveError(
                        f"{path.name}: member {member.name!r} after the manifest", hint=_TAMPERED
                    )
                hashing = _Hashing(stream, progress)
                while hashing.read(_CHUNK):
                    pass
                seen[member.name] = (hashing.count, hashing.digest.hexdigest())
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise ArchiveError(
            f"{path.name} is torn or not an archive ({type(exc).__name__}: {exc})",
            hint="copy the archive again from where it was made; nothing was changed",
        ) from None
    if body is None:
        raise ArchiveError(f"{path.name} has no manifest: it is cut short or not an ops archive", hint=_TORN)
    manifest = _from_json(body)
    if kind is not None and manifest.kind != kind:
        raise ArchiveError(
            f"{path.name} is an ops {manifest.kind}, not a {kind}",
            hint=f"`ops {'restore' if manifest.kind == 'backup' else 'bundle load'}` reads it",
        )
    if seal_key is not None:
        if "seal" not in body:
            raise ArchiveError(
                f"{path.name} is not sealed, so its manifest cannot be trusted", hint=_TAMPERED
            )
        expected = _seal(seal_key, {k: v for k, v in body.items() if k != "seal"})
        if not hmac.compare_digest(expected, str(body["seal"])):
            raise ArchiveError(
                f"{path.name}: the manifest's seal does not match (a wrong passphrase, or the archive was changed)",
                hint="check the passphrase; nothing was changed",
            )
    for name, (size, digest) in manifest.files.items():
        if name not in seen:
            raise ArchiveError(f"{path.name}: {name} is missing", hint=_TORN)
        if seen[name] != (size, digest):
            raise ArchiveError(f"{path.name}: {name} does not match its checksum", hint=_TAMPERED)
    extra = sorted(set(seen) - set(manifest.files))
    if extra:
        raise ArchiveError(f"{path.name}: {extra[0]} is not in the manifest", hint=_TAMPERED)
    return manifest


def read_manifest(path: Path) -> Manifest:
    """The manifest of an archive, read without checking the members (for ``--json`` listings only)."""
    try:
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                if member.name == MANIFEST:
                    stream = tar.extractfile(member)
                    assert stream is not None
                    return _from_json(_parse_manifest(Path(path), stream.read(16 << 20)))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveError(f"{Path(path).name} is torn or not an archive ({exc})", hint=_TORN) from None
    raise ArchiveError(f"{Path(path).name} has no manifest", hint=_TORN)


def read_members(path: Path, manifest: Manifest) -> Iterator[tuple[str, io.RawIOBase, int]]:
    """Each payload member of a :func:`verify`-ed archive as (name, stream, size), in archive order.

    The stream is valid until the next member is asked for. Each member is checked again as it is
    read: a file that changed between :func:`verify` and now raises :class:`ArchiveError` at its end.
    """
    with tarfile.open(path, mode="r|*") as tar:
        for member in tar:
            if member.name == MANIFEST:
                return
            if member.name not in manifest.files:
                raise ArchiveError(f"{Path(path).name}: {member.name} is not in the manifest", hint=_TAMPERED)
            stream = tar.extractfile(member)
            assert stream is not None
            size, digest = manifest.files[member.name]
            checked = _Hashing(stream, None, expected=(member.name, size, digest))
            yield member.name, checked, size
            while checked.read(_CHUNK):  # whatever the caller did not read is still checked
                pass


def seal_key(passphrase: str, salt: bytes) -> bytes:
    """A key for sealing manifests, derived from a passphrase (scrypt, n=2**15)."""
    return hashlib.scrypt(passphrase.encode(), salt=salt, n=2**15, r=8, p=1, maxmem=64 << 20, dklen=32)


_TORN = "the archive is incomplete: copy it again from where it was made; nothing was changed"
_TAMPERED = "the archive was changed after it was made: use another copy; nothing was changed"


class _Hashing(io.RawIOBase):
    """A reader that hashes and counts what passes (and, given ``expected``, checks it at its end)."""

    def __init__(
        self, stream: IO[bytes], progress: Progress | None, expected: tuple[str, int, str] | None = None
    ):
        self.stream, self.progress, self.expected = stream, progress, expected
        self.digest = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        if data:
            self.digest.update(data)
            self.count += len(data)
            if self.progress:
                self.progress(len(data))
        elif self.expected is not None:
            name, size_, digest = self.expected
            self.expected = None
            if (self.count, self.digest.hexdigest()) != (size_, digest):
                raise ArchiveError(f"{name} changed while it was read", hint=_TAMPERED)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _check_name(name: str) -> None:
    parts = name.split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"member name {name!r} must be a relative path without . or ..")


def _manifest_json(manifest: Manifest) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "kind": manifest.kind,
        "created": manifest.created,
        "ops_version": manifest.ops_version,
        "meta": manifest.meta,
        "files": {
            name: {"size": size, "sha256": digest} for name, (size, digest) in sorted(manifest.files.items())
        },
    }


def _seal(key: bytes, body: dict[str, Any]) -> str:
    return hmac.new(key, json.dumps(body, sort_keys=True).encode(), hashlib.sha256).hexdigest()


def _parse_manifest(path: Path, data: bytes) -> dict[str, Any]:
    try:
        body = json.loads(data)
    except ValueError:
        raise ArchiveError(f"{path.name}: the manifest is not JSON", hint=_TAMPERED) from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise ArchiveError(
            f"{path.name} is not an ops archive", hint="give a file `ops backup` or `ops bundle create` wrote"
        )
    if body.get("version") != VERSION:
        raise ArchiveError(
            f"{path.name} is an ops archive of format {body.get('version')}, this ops reads {VERSION}",
            hint="use the ops version that made it",
        )
    return body


def _from_json(body: dict[str, Any]) -> Manifest:
    try:
        files = {str(k): (int(v["size"]), str(v["sha256"])) for k, v in body["files"].items()}
        return Manifest(
            kind=str(body["kind"]),
            created=str(body["created"]),
            ops_version=str(body["ops_version"]),
            meta=dict(body.get("meta") or {}),
            files=files,
            sealed="seal" in body,
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ArchiveError("the archive's manifest is incomplete", hint=_TAMPERED) from None
