"""``ops rag ingest``: put documents into a running Chainlit RAG app's library and bring its index up to date.

Files are copied into the documents volume through the running container (Docker's
``put_archive``, so named volumes work as well as bind mounts), files named with ``--remove`` are
deleted there, and then the app's own ingest (``python -m rag.ingest --json``) runs inside the
container: new, changed and deleted files are found by their content hashes and only those are
re-indexed. The running app notices the new index on its next question.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO

from ops import reconcile, services
from ops.errors import DockerError, OpsError, UsageError
from ops.profiles import LoadedProfile

DEFAULT_DOCS_DIR = "/data/docs"
#: The file types the app indexes: keep in step with ``stacks/chainlit-rag/rag/loaders.py``
#: (a unit test compares them). Other files are not copied.
SUFFIXES = (".md", ".markdown", ".txt", ".text", ".rst", ".csv", ".pdf", ".html", ".htm")
#: The app's user in the image owns what it indexes.
APP_UID = 10001
INGEST_COMMAND = ["python", "-m", "rag.ingest", "--json"]


@dataclass(frozen=True)
class Skipped:
    """A file that is not in the index, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class IngestReport:
    """What one ``ops rag ingest`` did."""

    stack: str
    service: str
    copied: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    documents: int = 0
    chunks: int = 0
    embedder: str | None = None
    #: The index's rewrite count: the same number after a restart means the stored index was kept.
    generation: int = 0
    seconds: float = 0.0


def rag_service(loaded: LoadedProfile, name: str | None = None) -> str:
    """The profile's RAG service (a kind with the ``rag`` feature): ``name``, or the only enabled one."""
    found = [
        n
        for n, s in loaded.profile.services.items()
        if s.enabled and services.has_feature(s.kind, services.RAG)
    ]
    kinds = " or ".join(services.with_feature(services.RAG))
    if name is not None:
        if name not in found:
            raise UsageError(
                f"profile {loaded.name} has no enabled {kinds} service {name!r}",
                hint=f"{kinds} services: {', '.join(found) or 'none'}",
            )
        return name
    if len(found) != 1:
        raise UsageError(
            f"profile {loaded.name} has {len(found) or 'no'} enabled {kinds} services",
            hint="name one with --service" if found else f"add a service of kind {kinds} to the profile",
        )
    return found[0]


def ingest(
    loaded: LoadedProfile,
    paths: list[Path] | tuple[Path, ...] = (),
    remove: list[str] | tuple[str, ...] = (),
    service: str | None = None,
    client=None,
) -> IngestReport:
    """Copy ``paths`` in, delete ``remove`` (paths inside the library), re-index; report what changed."""
    started = time.monotonic()
    name = rag_service(loaded, service)
    if client is None:
        from ops.docker_engine import connect

        client = connect()
    container = reconcile.containers(client, loaded.name).get(name)
    if container is None or container.status != "running":
        raise OpsError(
            f"the {name} container of stack {loaded.name} is not running",
            hint=f"start it with `ops up {loaded.name}`",
        )
    docs = _docs_dir(container)
    archive, copied, ignored = pack(paths)
    with archive:
        return _apply(loaded, name, container, docs, (archive, copied, ignored), remove, started)


def _apply(
    loaded: LoadedProfile,
    name: str,
    container: Any,
    docs: str,
    packed: tuple[IO[bytes], list[str], list[tuple[str, str]]],
    remove: list[str] | tuple[str, ...],
    started: float,
) -> IngestReport:
    """Delete ``remove``, copy the packed files in, run the app's ingest; report."""
    archive, copied, ignored = packed
    removed = [_inside(docs, item) for item in remove]
    if removed:
        code, output = container.exec_run(["rm", "-f", "--", *removed], demux=True)
        if code != 0:
            raise OpsError(
                f"could not delete {', '.join(remove)}: {_text(output[1])}", hint="check the names"
            )
    if copied and not container.put_archive(docs, archive):
        raise DockerError(
            f"Docker refused to copy the files into {name}:{docs}", hint="see the Docker daemon's log"
        )
    code, output = container.exec_run(INGEST_COMMAND, demux=True)
    stdout, stderr = _text(output[0]), _text(output[1])
    if code != 0:
        tail = "; ".join(stderr.strip().splitlines()[-3:])
        raise OpsError(
            f"the app's ingest failed (exit {code}): {tail}", hint=f"see `ops logs {loaded.name} {name}`"
        )
    try:
        result = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise OpsError(
            f"the app's ingest printed no report: {stdout[-200:]!r}",
            hint="rebuild the image: `ops images build`",
        ) from None
    return IngestReport(
        stack=loaded.name,
        service=name,
        copied=copied,
        removed=list(remove),
        added=result.get("added", []),
        changed=result.get("changed", []),
        deleted=result.get("deleted", []),
        unchanged=int(result.get("unchanged", 0)),
        skipped=[Skipped(p, r) for p, r in ignored]
        + [Skipped(s["path"], s["reason"]) for s in result.get("skipped", [])],
        documents=int(result.get("documents", 0)),
        chunks=int(result.get("chunks", 0)),
        embedder=result.get("embedder"),
        generation=int(result.get("generation", 0)),
        seconds=time.monotonic() - started,
    )


def pack(
    paths: list[Path] | tuple[Path, ...],
) -> tuple[IO[bytes], list[str], list[tuple[str, str]]]:
    """A tar of the indexable files under ``paths``: (tar file at offset 0, names inside, [(file, why not copied)]).

    A file goes in as its name; a folder as a folder of that name, with its indexable files below it.
    Symbolic links are never followed (a ``notes.md`` that points at ``~/.aws/credentials`` would
    copy the credentials into the library): each is reported as not copied, as is anything else
    that is not a regular file. Files are streamed into a temporary file, never read whole.
    """
    archive = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller, who closes it
    copied: list[str] = []
    ignored: list[tuple[str, str]] = []
    with tarfile.open(fileobj=archive, mode="w") as tar:
        folders: set[str] = set()
        for given in paths:
            path = Path(given).expanduser()
            if not path.exists() and not path.is_symlink():
                archive.close()
                raise UsageError(f"{given} does not exist", hint="give a file or a folder of documents")
            root = path.parent
            for file, why in _candidates(path):
                rel = file.relative_to(root)
                if any(part.startswith(".") for part in rel.parts):
                    continue
                if why:
                    ignored.append((rel.as_posix(), why))
                    continue
                if file.suffix.lower() not in SUFFIXES:
                    ignored.append(
                        (rel.as_posix(), f"not copied: unsupported file type {file.suffix or '(none)'}")
                    )
                    continue
                try:
                    handle = _open_regular(file)
                except OSError as exc:
                    ignored.append((rel.as_posix(), f"not copied: {_why_unreadable(file, exc)}"))
                    continue
                with handle:
                    for parent in reversed(rel.parents[:-1]):
                        if parent.as_posix() not in folders:
                            folders.add(parent.as_posix())
                            tar.addfile(_info(parent.as_posix(), tarfile.DIRTYPE, 0o755))
                    size = os.fstat(handle.fileno()).st_size
                    tar.addfile(_info(rel.as_posix(), tarfile.REGTYPE, 0o644, size), handle)
                copied.append(rel.as_posix())
    archive.seek(0)
    return archive, copied, ignored


LINK = "not copied: a symbolic link (links are not followed; give the file itself)"
NOT_A_FILE = "not copied: not a regular file"


def _candidates(path: Path) -> Iterator[tuple[Path, str | None]]:
    """Every file below ``path`` (or ``path`` itself), sorted, with a reason when it must not be read.

    Links are reported, never followed, whether given or found in a folder.
    """
    if path.is_symlink():
        yield path, LINK
        return
    if not path.is_dir():
        yield path, None if path.is_file() else NOT_A_FILE
        return
    found: list[tuple[Path, str | None]] = []
    for folder, dirs, files in os.walk(path, followlinks=False):
        here = Path(folder)
        for name in dirs:
            if (here / name).is_symlink():  # os.walk lists a link to a folder here and does not enter it
                found.append((here / name, LINK))
        for name in files:
            item = here / name
            mode = item.lstat().st_mode
            if stat.S_ISLNK(mode):
                found.append((item, LINK))
            elif not stat.S_ISREG(mode):
                found.append((item, NOT_A_FILE))
            else:
                found.append((item, None))
    yield from sorted(found)


def _open_regular(file: Path) -> BinaryIO:
    """Open ``file`` for reading only if it is still a regular file, not a link (no swap after the walk)."""
    # O_BINARY: os.open's default on Windows is the C runtime's text mode, which would read CR LF as LF.
    flags = (
        os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    )
    fd = os.open(file, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IsADirectoryError(errno.EINVAL, "not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _why_unreadable(file: Path, exc: OSError) -> str:
    if file.is_symlink() or exc.errno == errno.ELOOP:
        return LINK.removeprefix("not copied: ")
    if isinstance(exc, IsADirectoryError):
        return NOT_A_FILE.removeprefix("not copied: ")
    return f"cannot read: {exc.strerror or exc}"


def _info(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size = kind, mode, size
    # Owned by the app's user, so its later syncs may replace or delete them.
    info.uid, info.gid = APP_UID, 0
    info.mtime = int(time.time())
    return info


def _docs_dir(container) -> str:
    env = dict(
        item.split("=", 1) for item in container.attrs.get("Config", {}).get("Env") or [] if "=" in item
    )
    return env.get("RAG_DOCS_DIR", DEFAULT_DOCS_DIR)


def _inside(docs: str, name: str) -> str:
    """``name`` as a path inside the documents folder; never outside it."""
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise UsageError(f"--remove {name!r}: give a path inside the library, like notes/old.md")
    return str(PurePosixPath(docs) / rel)


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", errors="replace")
