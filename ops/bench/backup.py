"""Benchmark: the workshop's data kept safe and carried offline (issue 15), on a copy of a profile.

On a copy of the profile under its own stack name and free ports (the user's stack, its volumes and
its state are never touched), with ``participants`` Open WebUI accounts and a RAG library of
``documents`` generated documents when the profile has a RAG service:

- ``ops backup`` (secrets included, sealed): seconds, archive size, and the pause each service saw;
- the pause Open WebUI's users see: its API is asked every 25 ms during the backup; the longest
  answer, against the longest in as long a window before it;
- ``ops restore`` after ``ops down --volumes``: seconds, then ``ops up`` from the restored data to
  ready, and the accounts found again;
- optionally (``bundle``) ``ops bundle create``, ``ops bundle load`` and ``ops up`` from it.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from ops import lifecycle, profiles, services
from ops.errors import ConflictError
from ops.plan import StackPlan, resolve
from ops.profiles import LoadedProfile
from ops.state import StackState

Say = Callable[[str], None]
PASSPHRASE_FOR_BENCH = "bench-backup-passphrase"
PROBE_EVERY_S = 0.025


@dataclass
class BackupBench:
    """The figures of one run (seconds, bytes)."""

    profile: str
    stack: str
    participants: int
    documents: int
    setup_s: float = 0.0
    ingest_s: float = 0.0
    backup_s: float = 0.0
    archive_bytes: int = 0
    volume_bytes: dict[str, int] = field(default_factory=dict)
    paused_s: dict[str, float] = field(default_factory=dict)
    #: The longest answer of the sign-in page's API during the backup, and in as long a window before it.
    longest_answer_during_ms: float = 0.0
    longest_answer_before_ms: float = 0.0
    probes_during: int = 0
    restore_s: float = 0.0
    up_after_restore_s: float = 0.0
    accounts_after_restore: int = 0
    accounts_before: int = 0
    bundle_bytes: int = 0
    bundle_create_s: float = 0.0
    bundle_load_s: float = 0.0
    up_from_bundle_s: float = 0.0


def run(
    ref: str = "workshop",
    participants: int = 20,
    documents: int = 1000,
    bundle: bool = False,
    say: Say = lambda _: None,
) -> BackupBench:
    """Measure backup, restore and (``bundle``) bundle-to-ready on a copy of profile ``ref``."""
    original = profiles.load(ref)
    stack = f"{original.name}-bench-backup"
    _refuse_existing(stack)
    work = Path(tempfile.mkdtemp(prefix="ops-bench-backup-"))
    loaded = _variant(original, stack, participants, work / f"{stack}.yaml")
    result = BackupBench(original.name, stack, participants, documents)
    plan = resolve(loaded)
    ui = _sign_in_service(plan)
    try:
        say(f"ops up {stack} (a copy of {original.name} on free ports, {participants} participants)")
        started = time.perf_counter()
        lifecycle.up(plan, say=say)
        result.setup_s = time.perf_counter() - started
        if documents and _rag_service(plan):
            result.ingest_s = _library(loaded, documents, work, say)
        state = StackState.for_stack(stack)
        result.accounts_before = _accounts(plan, state, ui)
        result = _backup_and_restore(plan, loaded, state, ui, work, result, say)
        if bundle:
            _bundle(plan, loaded, work, result, say)
        return result
    finally:
        lifecycle.down(resolve(loaded, ask_catalog=False), remove_volumes=True)
        shutil.rmtree(StackState.for_stack(stack).root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def _backup_and_restore(
    plan: StackPlan,
    loaded: LoadedProfile,
    state: StackState,
    ui: str | None,
    work: Path,
    result: BackupBench,
    say: Say,
) -> BackupBench:
    from ops.backup import restore, take

    archive = work / "bench.backup.tgz"
    url = plan.services[ui].url if ui else ""
    before = _probe_window(url, seconds=3.0) if url else []
    say("ops backup (while the stack serves; Open WebUI's API is asked every 25 ms)")
    with _probing(url) as during:
        report = take(plan, archive, secrets=True, passphrase=PASSPHRASE_FOR_BENCH, say=say)
    result.backup_s = report.seconds
    result.archive_bytes = report.size_bytes
    result.volume_bytes = {v.key: v.bytes for v in report.volumes}
    result.paused_s = dict(report.paused)
    result.longest_answer_before_ms = max(before, default=0.0)
    result.longest_answer_during_ms = max(during, default=0.0)
    result.probes_during = len(during)

    say("ops down --volumes, then ops restore")
    lifecycle.down(plan, remove_volumes=True)
    restored = restore(archive, passphrase=PASSPHRASE_FOR_BENCH, say=say)
    result.restore_s = restored.seconds
    started = time.perf_counter()
    again = resolve(loaded)
    lifecycle.up(again, say=say)
    result.up_after_restore_s = time.perf_counter() - started
    result.accounts_after_restore = _accounts(again, state, ui)
    return result


def _bundle(plan: StackPlan, loaded: LoadedProfile, work: Path, result: BackupBench, say: Say) -> None:
    from ops.bundle.create import create
    from ops.bundle.load import load

    path = work / "bench.opsbundle"
    say("ops bundle create")
    created = create(plan, path, say=say)
    result.bundle_create_s = created.seconds
    result.bundle_bytes = path.stat().st_size
    say("ops down, ops bundle load, ops up")
    lifecycle.down(plan)
    loaded_bundle = load(path, say=say)
    result.bundle_load_s = loaded_bundle.seconds
    path.unlink()
    started = time.perf_counter()
    lifecycle.up(resolve(loaded), say=say)
    result.up_from_bundle_s = time.perf_counter() - started


def _variant(original: LoadedProfile, stack: str, participants: int, path: Path) -> LoadedProfile:
    """The profile under stack name ``stack``, every published port and the gateway's on a free port."""
    from ops.bench.openwebui_variant import relocatable

    raw = relocatable(original)
    raw["name"] = stack
    for spec in (raw.get("services") or {}).values():
        spec["ports"] = [_free_port_mapping(p) for p in spec.get("ports") or []]
    gateway = raw.get("gateway") or {}
    gateway["port"] = _free_port()
    raw["gateway"] = gateway
    raw.pop("expose", None)  # the room is not part of this measurement
    if participants:
        raw["participants"] = {"count": participants}
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return profiles.load_path(path)


def _refuse_existing(stack: str) -> None:
    """The benchmark removes its stack's volumes and state at the end: a stack of that name must not exist."""
    from ops import reconcile
    from ops.docker_engine import connect

    client = connect()
    if (
        StackState.for_stack(stack).root.exists()
        or reconcile.volumes(client, stack)
        or reconcile.containers(client, stack)
    ):
        raise ConflictError(
            f"a stack named {stack} already exists: the benchmark would remove its data at the end",
            hint=f"`ops down {stack} --volumes` if it is a benchmark's leftover, or rename that stack",
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _free_port_mapping(port) -> str:
    """``HOST:PORT:CONTAINER`` (or shorter) with the host port replaced by a free one, on loopback."""
    text = str(port)
    container = text.rsplit(":", 1)[-1]
    return f"127.0.0.1:{_free_port()}:{container}"


def _sign_in_service(plan: StackPlan) -> str | None:
    """The service people sign in to (its API is what the backup's pause is measured on)."""
    for name, service in plan.services.items():
        if service.enabled and services.has_feature(service.kind.name, services.SIGN_IN):
            return name
    return None


def _rag_service(plan: StackPlan) -> str | None:
    for name, service in plan.services.items():
        if service.enabled and services.has_feature(service.kind.name, services.RAG):
            return name
    return None


def _library(loaded: LoadedProfile, documents: int, work: Path, say: Say) -> float:
    from ops import rag
    from ops.bench.rag_corpus import generate_corpus

    folder = work / "library"
    generate_corpus(folder, documents, seed=15)
    say(f"a RAG library of {documents} documents")
    started = time.perf_counter()
    rag.ingest(loaded, [folder])
    return time.perf_counter() - started


def _accounts(plan: StackPlan, state: StackState, ui: str | None) -> int:
    """How many accounts the sign-in service knows (through the kind's own API)."""
    if ui is None:
        return 0
    service = plan.services[ui]
    hook = service.kind.accounts
    if hook is None:
        return 0
    ctx = lifecycle.context(plan, state).for_service(ui)
    return len(hook.existing(ctx, service.url))


def _probe_window(url: str, seconds: float) -> list[float]:
    with _probing(url) as seen:
        time.sleep(seconds)
    return seen


@contextlib.contextmanager
def _probing(url: str) -> Iterator[list[float]]:
    """Ask ``url``'s health API every 25 ms in a thread; yields the answer times (ms), filled at exit."""
    seen: list[float] = []
    if not url:
        yield seen
        return
    stop = threading.Event()

    def probe() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                started = time.perf_counter()
                with contextlib.suppress(httpx.HTTPError):
                    client.get(f"{url}/health")
                seen.append((time.perf_counter() - started) * 1000)
                stop.wait(PROBE_EVERY_S)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(timeout=90)
