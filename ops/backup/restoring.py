"""``ops restore``: a backup archive back into an empty stack, here or on another machine (:func:`restore`).

Order, so that a bad archive or a refusal changes nothing:

1. the manifest is read; a sealed archive needs the passphrase (else one line: how to give it);
2. the whole archive is verified (every member's size and SHA-256, and the seal with the passphrase:
   a torn, corrupt or tampered archive, or a wrong passphrase, stops here);
3. the small members (the secret box and the state files, written first) are read and the box opened;
4. the target is checked: no container of it may exist (``ops down`` first), none of its volumes
   may hold data and none of its secrets may differ from the archive's: otherwise a
   :class:`~ops.errors.ConflictError`, unless ``force``, which first backs up what is there;
5. then the volumes are written (new volumes, labelled with the target stack); a failure removes
   the volumes this restore made; the state files come last.

State files already in the target (``participants.json``, ``versions.json``, ``usage.sqlite``) are kept unless
``force``: after ``ops down --volumes`` on the same machine they are newer than the archive's.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ops import archive, reconcile
from ops.backup import secretbox
from ops.backup.take import BOX, STATE_FILES, Progress, Say, default_output, snapshot, stack_lock
from ops.backup.volumes import HELPER_SERVICE, import_stream, is_empty
from ops.errors import ConflictError, UsageError
from ops.private import open_private, private_dir
from ops.settings import Settings
from ops.stack import SETUP_DONE_PREFIX
from ops.state import StackState, check_stack_name


@dataclass(frozen=True)
class RestoreReport:
    """What :func:`restore` did."""

    archive: Path
    stack: str
    source_stack: str
    volumes: list[str]
    #: "restored" (from the archive), or "kept" (this machine's: the archive has none).
    secrets: str
    state_files: list[str]
    kept_files: list[str]
    safety_backup: Path | None
    seconds: float
    next_step: str
    warnings: list[str] = field(default_factory=list)


def needs_passphrase(path: Path) -> bool:
    """True when the archive at ``path`` is sealed (or holds secrets): its passphrase is needed."""
    manifest = _first_look(Path(path))
    return manifest.sealed or BOX in manifest.files


def _first_look(path: Path) -> archive.Manifest:
    """The manifest, unchecked (for its seal's salt), read once per file version: the whole-archive
    :func:`~ops.archive.verify` that follows is what decides."""
    stat = path.stat() if path.is_file() else None
    return _read_manifest(str(path), stat.st_mtime_ns if stat else 0, stat.st_size if stat else 0)


@functools.lru_cache(maxsize=4)
def _read_manifest(path: str, _mtime: int, _size: int) -> archive.Manifest:
    return archive.read_manifest(Path(path))


def restore(
    path: Path,
    *,
    passphrase: str | None,
    as_name: str | None = None,
    force: bool = False,
    say: Say = lambda _text: None,
    progress: Progress | None = None,
    settings: Settings | None = None,
) -> RestoreReport:
    """Restore the backup at ``path`` into stack ``as_name`` (default: the stack it was made from)."""
    started = time.monotonic()
    path = Path(path)
    target = check_stack_name(as_name) if as_name else None
    first = _first_look(path)
    if first.kind != "backup":
        archive.verify(path, kind="backup")  # says what it is, in one line
    key = None
    if first.sealed or BOX in first.files:
        if not passphrase:
            raise UsageError(
                f"{path.name} is sealed with a passphrase, and none was given",
                hint="set OPS_BACKUP_PASSPHRASE, or give --passphrase-file FILE, or run it on a terminal",
            )
        salt = first.meta.get("seal_salt")
        if not isinstance(salt, str):
            raise archive.ArchiveError(f"{path.name}: its manifest has no seal salt", hint=archive._TAMPERED)
        key = archive.seal_key(passphrase, bytes.fromhex(salt))
    tick = (lambda n: progress("verifying", n)) if progress else None
    manifest = archive.verify(path, kind="backup", seal_key=key, progress=tick)
    meta = manifest.meta
    source = str(meta.get("stack", ""))
    stack = target or check_stack_name(source)
    state = StackState.for_stack(stack, settings)
    small = _small_members(path, manifest)
    box = secretbox.open_box(small[BOX], passphrase or "") if BOX in small else None
    volumes = {
        f"volumes/{v['key']}.tar": f"ops-{stack}-{v['key']}" if v["name"] != v["key"] else v["name"]
        for v in meta.get("volumes", [])
    }

    from ops.docker_engine import connect

    client = connect(work_timeout=600) if volumes else None
    state.ensure()
    with stack_lock(state):
        live, differing, present = _check(client, stack, state, volumes.values(), box)
        safety = None
        if (live or differing) and not force:
            what = [f"volume {n} holds data" for n in live] + [f"{n} differs" for n in differing]
            raise ConflictError(
                f"stack {stack} is not empty: {'; '.join(what[:3])}{' …' if len(what) > 3 else ''}",
                hint=f"`ops restore {path.name} --force` backs it up first, then replaces it; "
                f"or `--as NAME` restores beside it",
            )
        if force and (live or differing or present):
            out = default_output(stack, settings)
            out = out.with_name(out.name.replace(".backup.", "-before-restore.backup."))
            say(f"--force: backing up what stack {stack} holds first, to {out}")
            safety = snapshot(
                stack,
                out,
                wanted=tuple(volumes.values()),
                secrets=box is not None,
                passphrase=passphrase,
                say=say,
                progress=progress,
                settings=settings,
                extra_meta={"reason": f"before ops restore {path.name} --force"},
                locked=True,
            ).path
            for name in live:
                client.volumes.get(name).remove()  # type: ignore[union-attr]
                say(f"volume {name}: removed (it is in {safety.name})")
        made = _write_volumes(client, path, manifest, volumes, stack, say, progress)
        written, kept = _write_state(state, small, box, meta, force)
    secrets = "restored" if box is not None else "kept"
    warnings = []
    if box is None:
        had = [n for n in state.secrets.names() if not n.startswith(SETUP_DONE_PREFIX)]
        warnings.append(
            "the archive holds no secrets (made with --no-secrets): "
            + (
                f"this machine's secrets of stack {stack} are kept; the admin sign-ins ops made in the data "
                "work only if they are the ones the backup was made with"
                if had
                else "`ops up` makes new ones, which do not match the admin sign-ins ops made in the restored "
                "data: copy secrets.json of the stack from the machine it was made on into "
                f"{state.secrets.path} before `ops up`, or use a backup with secrets"
            )
        )
    if target and target != source:
        warnings.append(
            f"restored as {stack}: accounts made for participants of {source} keep their e-mails; "
            f"`ops up` makes those of {stack} anew"
        )
    return RestoreReport(
        archive=path,
        stack=stack,
        source_stack=source,
        volumes=made,
        secrets=secrets,
        state_files=written,
        kept_files=kept,
        safety_backup=safety,
        seconds=time.monotonic() - started,
        next_step=_next_step(meta, stack, source),
        warnings=warnings,
    )


def _small_members(path: Path, manifest: archive.Manifest) -> dict[str, bytes]:
    """The secret box and the state files (written before the volumes: read without the rest)."""
    found: dict[str, bytes] = {}
    members = archive.read_members(path, manifest)
    for name, stream, _size in members:
        if name.startswith("volumes/"):
            break
        found[name] = stream.read()
    close = getattr(members, "close", None)
    if close is not None:
        close()  # the generator closes the tar
    return found


def _check(client, stack: str, state: StackState, targets, box: dict[str, bytes] | None):
    """(volumes holding data, secrets or CA files that differ, state files present) of the target."""
    if client is not None:
        running = [s for s in reconcile.containers(client, stack) if s != HELPER_SERVICE]
        if running:
            raise ConflictError(
                f"stack {stack} has containers ({', '.join(sorted(running))})",
                hint=f"`ops down {stack}` first (its volumes are kept), then restore again",
            )
    live = [n for n in sorted(targets) if client is not None and not is_empty(client, n)]
    differing: list[str] = []
    if box is not None:
        ours = json.loads(box.get("secrets.json", b"{}") or b"{}")
        theirs = json.loads(state.secrets.path.read_text()) if state.secrets.path.is_file() else {}
        differing = [
            f"secret {n}"
            for n in sorted(set(ours) & set(theirs))
            if ours[n] != theirs[n] and not n.startswith(SETUP_DONE_PREFIX)
        ]
        for name, data in box.items():
            there = state.root / name
            if name != "secrets.json" and there.is_file() and there.read_bytes() != data:
                differing.append(name)
    present = [n for n in STATE_FILES if (state.root / n).is_file()]
    return live, differing, present


def _write_volumes(
    client, path, manifest, volumes: dict[str, str], stack: str, say: Say, progress
) -> list[str]:
    """Each archived volume into its (new or empty) target, with its labels; on failure the ones made are removed."""
    from ops import labels

    extra_labels = {
        f"volumes/{v['key']}.tar": {str(k): str(x) for k, x in (v.get("labels") or {}).items()}
        for v in manifest.meta.get("volumes", [])
    }
    made: list[str] = []
    try:
        for member, stream, size in archive.read_members(path, manifest):
            if member not in volumes:
                continue
            name = volumes[member]
            tick = (lambda n, _m=member: progress(f"restoring {_m}", n)) if progress else None
            own = {**extra_labels.get(member, {}), labels.STACK: stack}
            import_stream(client, name, stream, volume_labels=own, progress=tick)
            made.append(name)
            say(f"volume {name}: restored ({size / 1e6:.1f} MB)")
    except BaseException:
        for name in made:
            with contextlib.suppress(Exception):
                client.volumes.get(name).remove(force=True)
        raise
    return made


def _write_state(
    state: StackState, small: dict[str, bytes], box: dict[str, bytes] | None, meta: dict, force: bool
) -> tuple[list[str], list[str]]:
    """The state files (kept when there unless ``force``), the secrets (merged: the archive's win)."""
    written, kept = [], []
    for member, data in sorted(small.items()):
        if not member.startswith("state/"):
            continue
        name = member.removeprefix("state/")
        if (state.root / name).exists() and not force:
            kept.append(name)
            continue
        _write_private(state.root / name, data)
        written.append(name)
    store = state.secrets
    current = json.loads(store.path.read_text()) if store.path.is_file() else {}
    if box is not None:
        for name, data in sorted(box.items()):
            if name == "secrets.json":
                current.update(json.loads(data))
            else:
                _write_private(state.root / name, data)
                written.append(name)
        written.append("secrets.json")
    elif meta.get("setup_done"):
        # The restored volumes hold the data those setups made: the markers must say so.
        for marker in meta["setup_done"]:
            current[str(marker)] = "1"
    else:
        return written, kept
    _write_private(store.path, json.dumps(current, indent=2, sort_keys=True).encode())
    return written, kept


def _write_private(path: Path, data: bytes) -> None:
    private_dir(path.parent)
    tmp = path.with_name(path.name + ".restoring")
    with os.fdopen(open_private(tmp, os.O_WRONLY | os.O_TRUNC), "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _next_step(meta: dict, stack: str, source: str) -> str:
    profile = meta.get("profile") or {}
    where = str(profile.get("path") or "")
    ref = where if where and Path(where).is_file() else "PROFILE"
    if stack == source:
        return f"ops up {ref}   (the profile of stack {stack}; sha256 {str(profile.get('sha256', ''))[:12]}…)"
    return (
        f"copy {ref} to {stack}.yaml, set `name: {stack}` in it, then `ops up {stack}.yaml` "
        f"(a stack's volumes and state follow the profile's name)"
    )
