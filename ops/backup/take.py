"""``ops backup``: a consistent archive of a stack's volumes and state (:func:`take`).

What an archive holds (members of an :mod:`ops.archive` of kind ``backup``):

- ``volumes/<key>.tar``: each named volume of the stack (those the plan's services mount, and every
  other volume labelled with the stack: the ones ``ops up`` made for the ``VOLUME``s an image
  declares), ``<key>`` being its name without ``ops-<stack>-``, so a restore can rename it;
- ``state/participants.json`` (the roster's changes), ``state/versions.json`` (the versions ``ops
  upgrade --to`` chose) and ``state/usage.sqlite`` (the gateway's usage records, copied with SQLite's
  backup API: a consistent copy while the gateway writes);
- ``secrets.box``: ``secrets.json`` and the ``tls/`` folder (the room's CA and its key), encrypted
  with the passphrase (:mod:`ops.backup.secretbox`); left out with ``secrets=False``;
- never the model host's pid, log, ``host.json`` (``ops up`` writes them again) nor earlier backups.

Consistency: a running service's volumes are copied while its container is paused (``docker
pause``: its processes are frozen, so no file, SQLite's with its WAL included, changes during the
copy), and unpaused as soon as the copy is written to a temporary file on this machine; hashing and
compressing into the archive happen after. The pause is the copy of the volume alone (Open WebUI's
data volume: about 1 MB, a few tenths of a second), measured and reported per service. A stopped
stack needs no pause.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker.errors

from ops import archive, labels
from ops.backup import secretbox
from ops.backup.volumes import HELPER_SERVICE, export_volume
from ops.errors import UsageError
from ops.locks import file_lock
from ops.private import private_dir
from ops.settings import Settings
from ops.stack import SETUP_DONE_PREFIX
from ops.state import StackState
from ops.versions import OVERRIDES_FILE

Say = Callable[[str], None]
#: ``progress(description, bytes_done_since_last_call)``.
Progress = Callable[[str, int], None]

BOX = "secrets.box"
#: The state files an archive carries: the roster's changes, the versions ``ops upgrade --to`` chose
#: (the restored data was migrated to them), and the gateway's usage records (SQLite).
STATE_FILES = ("participants.json", OVERRIDES_FILE, "usage.sqlite")
#: A passphrase shorter than this is refused when it encrypts (any length opens).
MIN_PASSPHRASE = 8


@dataclass(frozen=True)
class VolumeCopy:
    """One volume in the archive: its Docker name, its key (the name without ``ops-<stack>-``)."""

    name: str
    key: str
    service: str
    bytes: int
    #: Its labels besides ``ops.stack`` and ``ops.volume`` (the profile's ``volumes.X.labels``).
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BackupReport:
    """What :func:`take` wrote."""

    path: Path
    stack: str
    size_bytes: int
    seconds: float
    volumes: list[VolumeCopy]
    #: Service -> seconds its container was paused (only services that were running).
    paused: dict[str, float]
    secrets: bool
    sealed: bool
    state_files: list[str] = field(default_factory=list)


def stack_lock(state: StackState):
    """The lock ``ops up`` and ``ops down`` hold (``ops.lifecycle.stack_lock``, not imported: no cycle)."""
    return file_lock(state.root / "up.lock")


def default_output(stack: str, settings: Settings | None = None) -> Path:
    """``<state>/backups/<stack>-<UTC time>.backup.tgz``: private (0700 folders), and found again."""
    state = StackState.for_stack(stack, settings)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return state.root / "backups" / f"{stack}-{stamp}.backup.tgz"


def volume_key(stack: str, name: str) -> str:
    """A volume's name without its stack's prefix (``ops-owui-data`` -> ``data``)."""
    prefix = f"ops-{stack}-"
    return name[len(prefix) :] if name.startswith(prefix) and len(name) > len(prefix) else name


def take(
    plan,
    output: Path,
    *,
    secrets: bool,
    passphrase: str | None,
    say: Say,
    progress: Progress | None = None,
    settings: Settings | None = None,
    locked: bool = False,
) -> BackupReport:
    """Back up the stack of ``plan`` to ``output`` (0600); returns what was written.

    ``secrets``: include the secrets, encrypted with ``passphrase`` (required then). A passphrase
    also seals the manifest (a changed archive is refused at restore); without one (``secrets=False``
    only) the archive's checksums still detect corruption. The stack's lock is held for the
    copy (no ``up`` or ``down`` meanwhile) unless ``locked``: the caller holds it already (``ops up``
    upgrading a service), and the lock is not re-entrant.
    """
    profile_bytes = Path(plan.path).read_bytes() if Path(plan.path).is_file() else b""
    profile = {"name": plan.name, "path": str(plan.path), "sha256": hashlib.sha256(profile_bytes).hexdigest()}
    services = {
        name: {"image": s.declared_image, "kind": s.kind.name, "enabled": s.enabled}
        for name, s in plan.services.items()
    }
    return snapshot(
        plan.name,
        output,
        wanted=tuple(plan.volumes),
        secrets=secrets,
        passphrase=passphrase,
        say=say,
        progress=progress,
        settings=settings,
        extra_meta={"profile": profile, "services": services},
        need_docker=bool(plan.services),
        locked=locked,
    )


def snapshot(
    stack: str,
    output: Path,
    *,
    wanted: tuple[str, ...],
    secrets: bool,
    passphrase: str | None,
    say: Say,
    progress: Progress | None = None,
    settings: Settings | None = None,
    extra_meta: dict[str, Any] | None = None,
    need_docker: bool = True,
    locked: bool = False,
) -> BackupReport:
    """Back up stack ``stack``: the volumes in ``wanted`` that exist, every volume labelled with the
    stack, its state; :func:`take` for a plan, ``ops restore --force`` for a stack without one."""
    if secrets and not passphrase:
        raise UsageError(
            "a backup with secrets needs a passphrase", hint="set OPS_BACKUP_PASSPHRASE or --no-secrets"
        )
    if secrets and passphrase is not None and len(passphrase) < MIN_PASSPHRASE:
        raise UsageError(
            f"the passphrase is shorter than {MIN_PASSPHRASE} characters", hint="choose a longer one"
        )
    started = time.monotonic()
    state = StackState.for_stack(stack, settings).ensure()
    output = Path(output).absolute()
    private_dir(output.parent)
    salt = os.urandom(16)
    meta: dict[str, Any] = {"stack": stack, **(extra_meta or {})}
    with _scratch(output.parent) as tmp:
        with contextlib.nullcontext() if locked else stack_lock(state):
            copies, paused, images = _copy_volumes(stack, wanted, tmp, say, progress, need_docker)
            files = _state_files(state, tmp)
            box = _box(state, passphrase) if secrets and passphrase else None
            markers = sorted(state.secrets.with_prefix(SETUP_DONE_PREFIX))
        for name, info in images.items():
            meta.setdefault("services", {}).setdefault(name, {}).update(info)
        meta.update(
            volumes=[
                {"name": c.name, "key": c.key, "service": c.service, "bytes": c.bytes, "labels": c.labels}
                for c in copies
            ],
            pause_seconds={s: round(t, 3) for s, t in paused.items()},
            secrets="included" if box is not None else "left out",
            setup_done=markers,
            state_files=sorted(files),
            seal_salt=salt.hex() if passphrase else None,
        )
        key = archive.seal_key(passphrase, salt) if passphrase else None
        advance = (lambda n: progress("writing the archive", n)) if progress else None
        writer = archive.ArchiveWriter(output, "backup", meta, compress=True, seal_key=key, progress=advance)
        try:
            # The small members first: a restore reads them (and checks them) before it changes anything.
            if box is not None:
                writer.add_bytes(BOX, box)
            for name, path in sorted(files.items()):
                writer.add_file(f"state/{name}", path)
            for copy in copies:
                writer.add_file(f"volumes/{copy.key}.tar", tmp / "volumes" / f"{copy.key}.tar")
        except BaseException:
            writer.abort()
            raise
        writer.close()
    return BackupReport(
        path=output,
        stack=stack,
        size_bytes=output.stat().st_size,
        seconds=time.monotonic() - started,
        volumes=copies,
        paused=paused,
        secrets=box is not None,
        sealed=key is not None,
        state_files=sorted(files),
    )


def _copy_volumes(stack: str, wanted: tuple[str, ...], tmp: Path, say: Say, progress, need_docker: bool):
    """Export the stack's volumes to ``tmp/volumes``, pausing each running container that mounts them."""
    from ops import reconcile
    from ops.docker_engine import connect

    copies: list[VolumeCopy] = []
    paused: dict[str, float] = {}
    images: dict[str, dict[str, str]] = {}
    labelled = set()
    client = None
    if need_docker or wanted:
        client = connect(work_timeout=600)
        labelled = set(reconcile.volumes(client, stack))
    if client is None:
        return copies, paused, images
    existing = {v.name: dict(v.attrs.get("Labels") or {}) for v in client.volumes.list()}
    names = sorted((set(wanted) & set(existing)) | labelled)
    (tmp / "volumes").mkdir(parents=True, exist_ok=True)
    containers = {svc: c for svc, c in reconcile.containers(client, stack).items() if svc != HELPER_SERVICE}
    mounts = {
        svc: {m.get("Name") for m in c.attrs.get("Mounts") or [] if m.get("Type") == "volume"}
        for svc, c in containers.items()
    }
    for svc, c in containers.items():
        image_id = c.attrs.get("Image", "")
        tags = [c.attrs.get("Config", {}).get("Image", "")]  # the reference it was made from
        with contextlib.suppress(docker.errors.ImageNotFound):  # an image replaced since: its id only
            tags = c.image.tags or tags
        version = c.labels.get(labels.VERSION) or (tags[0].rpartition(":")[2] if tags else "")
        images[svc] = {"image_id": image_id, "image_tag": tags[0] if tags else "", "version": version}
    owner = {name: next((s for s, m in mounts.items() if name in m), "") for name in names}

    def export(name: str) -> None:
        key = volume_key(stack, name)
        tick = (lambda n: progress(f"volume {key}", n)) if progress else None
        size = export_volume(client, name, tmp / "volumes" / f"{key}.tar", progress=tick)
        own = {k: v for k, v in existing.get(name, {}).items() if k not in (labels.STACK, labels.VOLUME)}
        copies.append(VolumeCopy(name, key, owner[name], size, own))

    # Only a running container that mounts a volume read-write can change it while it is copied.
    for c in containers.values():
        c.reload()
    writers = {
        svc: {m.get("Name") for m in c.attrs.get("Mounts") or [] if m.get("Type") == "volume" and m.get("RW")}
        for svc, c in containers.items()
        if (c.attrs.get("State") or {}).get("Status") == "running"
    }
    done: set[str] = set()
    for svc in writers:
        todo = [n for n in names if n in writers[svc] and n not in done]
        if not todo:
            continue
        # Every running writer of those volumes is paused with it (a volume two services share).
        group = sorted(s for s, w in writers.items() if w & set(todo))
        with contextlib.ExitStack() as pauses:
            clocks = {s: pauses.enter_context(_paused(containers[s])) for s in group}
            for name in todo:
                export(name)
                done.add(name)
        for s, clock in clocks.items():
            paused[s] = paused.get(s, 0.0) + clock()
            say(f"{s}: paused {clock():.2f} s while {len(todo)} volume(s) were copied")
    for name in names:
        if name not in done:
            export(name)
    return sorted(copies, key=lambda c: c.name), paused, images


@contextlib.contextmanager
def _paused(container) -> Iterator[Callable[[], float]]:
    """``docker pause`` for the block (unpaused whatever happens); yields the seconds it lasted, once over."""
    started = time.monotonic()
    ended: list[float] = []
    container.pause()
    try:
        yield lambda: ended[0] - started
    finally:
        container.unpause()
        ended.append(time.monotonic())


def _state_files(state: StackState, tmp: Path) -> dict[str, Path]:
    """Consistent copies of the state files that exist (``usage.sqlite`` by SQLite's backup API)."""
    files: dict[str, Path] = {}
    for name in STATE_FILES:
        plain = state.root / name
        if name != "usage.sqlite" and plain.is_file():  # each is replaced whole by its writer: no torn copy
            shutil.copyfile(plain, tmp / name)
            files[name] = tmp / name
    if state.usage_db.is_file():
        copy = tmp / "usage.sqlite"
        source = sqlite3.connect(state.usage_db.absolute().as_uri() + "?mode=ro", uri=True)
        target = sqlite3.connect(copy)
        try:
            with target:
                source.backup(target)
        finally:
            source.close()
            target.close()
        files["usage.sqlite"] = copy
    return files


def _box(state: StackState, passphrase: str) -> bytes:
    """``secrets.json`` and ``tls/`` encrypted with ``passphrase``."""
    files: dict[str, bytes] = {}
    if state.secrets.path.is_file():
        files["secrets.json"] = state.secrets.path.read_bytes()
    tls = state.root / "tls"
    if tls.is_dir():
        for path in sorted(tls.rglob("*")):
            if path.is_file():
                files[path.relative_to(state.root).as_posix()] = path.read_bytes()
    return secretbox.seal(files, passphrase)


@contextlib.contextmanager
def _scratch(folder: Path):
    """A private temporary folder beside the archive (same disk: no second disk fills)."""
    path = Path(tempfile.mkdtemp(prefix=".ops-backup-", dir=folder))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
