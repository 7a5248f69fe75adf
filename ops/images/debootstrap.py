"""Make a Debian root filesystem with debootstrap, for machines that cannot pull images.

The rootfs lives in a temporary directory only while the caller streams it into Docker;
:func:`bootstrap_rootfs` removes it afterwards, taking care never to delete through a
mount that debootstrap left behind.

Linux only (debootstrap, ``mount``, ``/proc``, root): elsewhere :func:`bootstrap_rootfs` refuses
with a :class:`DockerError` that says how to get the base image instead.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from ops.errors import DockerError
from ops.settings import OPS_DEBIAN_MIRROR

SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
MIRROR_ENV = OPS_DEBIAN_MIRROR
DEBOOTSTRAP_TIMEOUT_S = 900

# Per-package lines ("I: Retrieving libc6 2.36-9") are hundreds; the rest are the phases.
_PER_PACKAGE = re.compile(r"^I: (Retrieving|Validating|Extracting|Unpacking|Configuring) \S+")

Progress = Callable[[str], None]


def debian_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """Return the Debian mirror to bootstrap from.

    ``OPS_DEBIAN_MIRROR`` wins; then the host's own apt mirror for the same suite, because
    the host got its packages from it, so it is known to be reachable (and may be a local
    cache or a snapshot); then ``deb.debian.org``.
    """
    override = os.environ.get(MIRROR_ENV, "").strip()
    if override:
        return override.rstrip("/")
    return _host_mirror(sources_dir) or DEFAULT_MIRROR


def _host_mirror(sources_dir: Path) -> str | None:
    """First http(s) URI that apt on this host uses for ``SUITE`` itself (not -security)."""
    files = [sources_dir / "sources.list"]
    files += sorted((sources_dir / "sources.list.d").glob("*.list"))
    files += sorted((sources_dir / "sources.list.d").glob("*.sources"))
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        entries = _deb822_entries(text) if path.suffix == ".sources" else _one_line_entries(text)
        for uri, suites in entries:
            if SUITE in suites and uri.startswith(("http://", "https://")):
                return uri.rstrip("/")
    return None


def _one_line_entries(text: str) -> Iterator[tuple[str, list[str]]]:
    for raw in text.splitlines():
        line = re.sub(r"\[[^\]]*\]", " ", raw.split("#", 1)[0]).split()
        if len(line) >= 3 and line[0] == "deb":
            yield line[1], [line[2]]


def _deb822_entries(text: str) -> Iterator[tuple[str, list[str]]]:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
            continue
        for uri in fields.get("uris", "").split():
            yield uri, fields.get("suites", "").split()


@contextlib.contextmanager
def bootstrap_rootfs(mirror: str, progress: Progress | None = None) -> Iterator[Path]:
    """Run ``debootstrap --variant=minbase`` into a temporary directory and yield the rootfs.

    The directory is removed when the ``with`` block ends. Raises :class:`DockerError`
    (the image cannot be made) when debootstrap is missing, fails or times out, and on any
    system but Linux.
    """
    if sys.platform != "linux":
        raise DockerError(
            f"the base image could not be pulled, and making it with debootstrap works on Linux only "
            f"(this is {sys.platform})",
            hint=f"Pull it once where Docker Hub answers (`docker pull debian:{SUITE}-slim`), or `docker load` "
            "one saved with `docker save` on another machine; then run the command again.",
        )
    exe = shutil.which("debootstrap")
    if exe is None:
        raise DockerError(
            "debootstrap is not installed, and no base image could be pulled",
            hint="Install it: `apt-get install debootstrap` (or run `.ci/ensure-docker` as root).",
        )
    workdir = Path(tempfile.mkdtemp(prefix="ops-debootstrap-"))
    rootfs = workdir / "rootfs"
    try:
        _run_debootstrap([exe, "--variant=minbase", SUITE, str(rootfs), mirror], mirror, progress)
        yield rootfs
    finally:
        _remove_safely(workdir, progress)


def _run_debootstrap(cmd: list[str], mirror: str, progress: Progress | None) -> None:
    if progress:
        progress(f"debootstrap {SUITE} from {mirror} (about 30-40 s)")
    tail: deque[str] = deque(maxlen=15)
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as proc:
        # SIGTERM, not SIGKILL, on timeout: debootstrap's exit trap unmounts /proc, /sys
        # and any /dev bind mounts it made inside the target.
        watchdog = threading.Timer(DEBOOTSTRAP_TIMEOUT_S, proc.terminate)
        watchdog.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip()
                tail.append(line)
                if progress and line and not _PER_PACKAGE.match(line):
                    progress(line)
        finally:
            watchdog.cancel()
        code = proc.wait()
    if code != 0:
        last = " | ".join(line for line in tail if line) or "(no output)"
        hint = f"Check that {mirror} is reachable, or set {MIRROR_ENV} to a mirror that is."
        if sys.platform == "linux" and os.geteuid() != 0:
            hint = "debootstrap must run as root. " + hint
        raise DockerError(f"debootstrap failed (exit {code}): {last}", hint=hint)


def _remove_safely(workdir: Path, progress: Progress | None) -> None:
    """Delete ``workdir`` unless something is still mounted below it.

    debootstrap bind-mounts the host's /dev when it runs inside a container; a kill at the
    wrong moment leaves that mount, and rmtree would then delete the host's device nodes.
    """
    mounted = _mounts_below(workdir)
    for target in sorted(mounted, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], check=False, capture_output=True)
    if _mounts_below(workdir):
        if progress:
            progress(f"left {workdir} in place: something is still mounted below it")
        return
    shutil.rmtree(workdir, ignore_errors=True)


def _mounts_below(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    # /proc/self/mounts escapes spaces as \040; our temp path has none, so a plain match is enough.
    return [f[1] for f in (line.split() for line in lines) if len(f) > 1 and f[1].startswith(prefix)]
