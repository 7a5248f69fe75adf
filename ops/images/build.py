"""Build a service image from its recipe folder (``stacks/<kind>/``), with an optional extra CA bundle.

The build context is assembled here and streamed to the daemon as a tar: the recipe folder
(minus ``.dockerignore`` matches), the CA bundle as ``ca-bundle.crt`` (an empty file when there
is none, so a Dockerfile can always ``COPY`` it), and any extra files such as wheels taken from
the host. Images are labelled with a hash of everything that decides their content, so an
unchanged recipe is never rebuilt: see :func:`recipe_hash` and :func:`image_up_to_date`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import tarfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import docker
import requests
from docker.errors import DockerException, ImageNotFound
from docker.utils.build import exclude_paths

from ops import labels
from ops.errors import DockerError, UsageError
from ops.images.base import BASE_IMAGE, MANAGED_LABEL, ensure_base_image
from ops.images.cleanup import remove_replaced_build, remove_stage_images
from ops.images.stages import label_stages

Progress = Callable[[str], None]

RECIPE_LABEL = labels.RECIPE
RECIPE_HASH_LABEL = labels.RECIPE_HASH
CA_BUNDLE_NAME = "ca-bundle.crt"
SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Checked in this order: whoever set one of these meant "trust this bundle", pip included.
CA_BUNDLE_ENV = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT")
LOG_TAIL_LINES = 30
DEFAULT_BUILD_TIMEOUT_S = 3600

_CHUNK = 1 << 20
# Never part of a context: they change on every run without changing the image.
_ALWAYS_SKIPPED = ("__pycache__", ".git", ".pytest_cache", ".DS_Store")
_SUCCESS_LINE = re.compile(r"^Successfully built ([0-9a-f]{12,64})$")


class BuildError(DockerError):
    """A build that ran and failed; ``log_tail`` holds its last log lines (also in the message)."""

    def __init__(self, message: str, hint: str | None, log_tail: Iterable[str] = ()):
        self.log_tail = tuple(log_tail)
        text = message
        if self.log_tail:
            text += "\n  last build log lines:\n" + "\n".join(f"    {line}" for line in self.log_tail)
        super().__init__(text, hint=hint)


@dataclass(frozen=True)
class _Entry:
    """One file of a build context: where it goes, and either a source file or literal bytes."""

    arcname: str
    source: Path | None
    data: bytes = b""

    @property
    def executable(self) -> bool:
        return self.source is not None and bool(self.source.stat().st_mode & 0o111)

    def size(self) -> int:
        return self.source.stat().st_size if self.source is not None else len(self.data)


def default_ca_bundle(env: Mapping[str, str] | None = None) -> Path | None:
    """The host's CA bundle to hand to builds, or None when there is none.

    ``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE`` or ``PIP_CERT`` win when set to an existing file
    (a TLS-intercepting network is usually configured that way); else Debian's system bundle.
    """
    env = os.environ if env is None else env
    for name in CA_BUNDLE_ENV:
        value = env.get(name, "").strip()
        if value and Path(value).is_file():
            return Path(value)
    return SYSTEM_CA_BUNDLE if SYSTEM_CA_BUNDLE.is_file() else None


def recipe_hash(
    client: docker.DockerClient,
    recipe_dir: Path,
    *,
    base: str = BASE_IMAGE,
    ca_bundle: Path | None = None,
    build_args: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    extra_files: Mapping[str, Path] | None = None,
    dockerfile: str = "Dockerfile",
) -> str:
    """sha256 of everything that decides what a build of ``recipe_dir`` produces.

    That is every context file's name, mode and content, the build arguments, the labels, the
    Dockerfile name, and the base image's id (a re-made base means a rebuild).
    """
    entries = _context_entries(recipe_dir, ca_bundle, extra_files, dockerfile)
    return _hash(entries, _base_identity(client, base), build_args or {}, labels or {}, dockerfile)


def image_up_to_date(client: docker.DockerClient, tag: str, recipe_hash: str) -> bool:
    """True when image ``tag`` exists and was built from a context with hash ``recipe_hash``."""
    try:
        image = client.images.get(tag)
    except ImageNotFound:
        return False
    except (DockerException, requests.exceptions.RequestException) as exc:
        raise DockerError(f"cannot look up image {tag}: {exc}", hint="Is the Docker daemon healthy?") from exc
    return (image.labels or {}).get(RECIPE_HASH_LABEL) == recipe_hash


def build_recipe(
    client: docker.DockerClient,
    recipe_dir: Path,
    tag: str,
    *,
    base: str = BASE_IMAGE,
    ca_bundle: Path | None = None,
    build_args: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    extra_files: dict[str, Path] | None = None,
    progress: Progress | None = None,
    timeout: float = DEFAULT_BUILD_TIMEOUT_S,
    dockerfile: str = "Dockerfile",
) -> str:
    """Build ``recipe_dir`` as image ``tag`` and return the image id.

    The Dockerfile gets ``--build-arg BASE=<base>`` (declare ``ARG BASE`` to use it) plus
    ``build_args``; ``ca-bundle.crt`` and ``extra_files`` (context path -> host file) sit in its
    context. Each build log line goes to ``progress``. When ``base`` is the ops base image it
    is made first if missing. Raises :class:`BuildError` (a :class:`DockerError`) with the last
    build log lines when the build fails, and :class:`UsageError` for a bad recipe folder.
    """
    say = progress or (lambda _line: None)
    if base == BASE_IMAGE:
        ensure_base_image(client, base, progress=say)
    entries = _context_entries(recipe_dir, ca_bundle, extra_files, dockerfile)
    digest = _hash(entries, _base_identity(client, base), build_args or {}, labels or {}, dockerfile)
    all_labels = {
        **(labels or {}),
        MANAGED_LABEL: "true",
        RECIPE_LABEL: recipe_dir.name,
        RECIPE_HASH_LABEL: digest,
    }
    previous = _image_id(client, tag)
    say(f"building {tag} from {recipe_dir} (context {sum(e.size() for e in entries) / 1e6:.1f} MB)")
    image_id, stage_ids = _run_build(
        client,
        _with_stage_labels(entries, dockerfile, recipe_dir.name),
        tag=tag,
        recipe_dir=recipe_dir,
        dockerfile=dockerfile,
        buildargs={"BASE": base, **(build_args or {})},
        labels=all_labels,
        say=say,
        timeout=timeout,
    )
    if previous and previous != image_id:
        remove_replaced_build(client, previous)
    freed = remove_stage_images(client, [i for i in stage_ids if i != image_id])
    if freed:
        say(f"removed {len(freed)} build stage image(s) the build left behind")
    say(f"built {tag} ({image_id[:19]})")
    return image_id


def _run_build(
    client: docker.DockerClient,
    entries: list[_Entry],
    *,
    tag: str,
    recipe_dir: Path,
    dockerfile: str,
    buildargs: dict[str, str],
    labels: dict[str, str],
    say: Progress,
    timeout: float,
) -> tuple[str, list[str]]:
    """Stream the context to the daemon and follow the build log; return the new image's id and
    every stage's image id in build order (the legacy builder reports each as the stage ends)."""
    tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
    image_id: str | None = None
    stage_ids: list[str] = []
    pending = ""
    deadline = time.monotonic() + timeout
    try:
        # `timeout` is also the per-read timeout: a single RUN (pip resolving open-webui) can
        # stay silent for minutes, far beyond the client's default of a few seconds.
        stream = client.api.build(
            fileobj=_tar_stream(entries),
            custom_context=True,
            tag=tag,
            dockerfile=dockerfile,
            buildargs=buildargs,
            labels=labels,
            rm=True,
            forcerm=True,
            decode=True,
            timeout=timeout,
        )
        for message in stream:
            if "error" in message:
                tail.extend(line for line in [pending.rstrip()] if line)
                raise BuildError(
                    f"building {tag} from {recipe_dir} failed: {_one_line(str(message['error']))}",
                    hint=_failure_hint(tail, str(message["error"]), recipe_dir),
                    log_tail=tail,
                )
            aux = message.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = str(aux["ID"])
                stage_ids.append(image_id)
            # The daemon sends text in arbitrary chunks; only complete lines are reported.
            pending += str(message.get("stream") or "")
            if message.get("status"):  # pulling a FROM image
                pending += f"{message['status']} {message.get('progress', '')}".rstrip() + "\n"
            *lines, pending = pending.split("\n")
            for line in filter(None, (raw.rstrip() for raw in lines)):
                tail.append(line)
                say(line)
                match = _SUCCESS_LINE.match(line)
                image_id = image_id or (match.group(1) if match else None)
            if time.monotonic() > deadline:
                raise BuildError(
                    f"building {tag} took longer than {timeout:g} s",
                    hint="Raise the build timeout, or look in the log for a step that hangs.",
                    log_tail=tail,
                )
    except (DockerException, requests.exceptions.RequestException) as exc:
        detail = getattr(exc, "explanation", None) or exc
        raise BuildError(
            f"building {tag} from {recipe_dir} failed: {_one_line(str(detail))}",
            hint=_failure_hint(tail, str(detail), recipe_dir),
            log_tail=tail,
        ) from exc
    if image_id is None:
        raise BuildError(
            f"building {tag} ended without reporting an image",
            hint="See the dockerd log: the build stream stopped early.",
            log_tail=tail,
        )
    # The tag is what callers run, so its id is the answer (the stream may give a short id).
    resolved = _image_id(client, tag)
    if resolved is None:
        raise BuildError(f"building {tag} ended, but no image is tagged {tag}", hint=None, log_tail=tail)
    return resolved, stage_ids


def _with_stage_labels(entries: list[_Entry], dockerfile: str, recipe: str) -> list[_Entry]:
    """``entries`` with the Dockerfile replaced by one whose every stage is labelled.

    The recipe hash is taken from the recipe's own Dockerfile: the labels follow from it and the
    recipe's name, so images built before stages were labelled still count as current.
    """
    result = []
    for entry in entries:
        if entry.arcname == PurePosixPath(Path(dockerfile)).as_posix() and entry.source is not None:
            text = entry.source.read_text(encoding="utf-8")
            entry = _Entry(entry.arcname, None, label_stages(text, recipe).encode())
        result.append(entry)
    return result


def _context_entries(
    recipe_dir: Path,
    ca_bundle: Path | None,
    extra_files: Mapping[str, Path] | None,
    dockerfile: str,
) -> list[_Entry]:
    """The files of the build context, sorted by name so the hash and the tar are stable."""
    recipe_dir = Path(recipe_dir)
    if not (recipe_dir / dockerfile).is_file():
        raise UsageError(
            f"no {dockerfile} in recipe folder {recipe_dir}",
            hint="A recipe is a folder with a Dockerfile; check the service's build.context.",
        )
    entries = {e.arcname: e for e in _recipe_files(recipe_dir, dockerfile)}
    if CA_BUNDLE_NAME in entries:
        raise UsageError(
            f"{recipe_dir / CA_BUNDLE_NAME} would be replaced by the build's CA bundle",
            hint="Remove it from the recipe and pass the file as the CA bundle instead.",
        )
    if ca_bundle is not None and not Path(ca_bundle).is_file():
        raise UsageError(f"CA bundle {ca_bundle} does not exist", hint="Give the path of a PEM file.")
    entries[CA_BUNDLE_NAME] = _Entry(CA_BUNDLE_NAME, Path(ca_bundle) if ca_bundle else None)
    for name, source in (extra_files or {}).items():
        arcname = _safe_arcname(name)
        if arcname in entries:
            raise UsageError(f"extra file {name} clashes with a file of the recipe {recipe_dir}")
        if not Path(source).is_file():
            raise UsageError(f"extra build file {source} does not exist", hint="Check the path.")
        entries[arcname] = _Entry(arcname, Path(source))
    return [entries[name] for name in sorted(entries)]


def _recipe_files(recipe_dir: Path, dockerfile: str) -> Iterator[_Entry]:
    ignore = recipe_dir / ".dockerignore"
    patterns = []
    if ignore.is_file():
        lines = ignore.read_text(encoding="utf-8").splitlines()
        patterns = [p.strip() for p in lines if p.strip() and not p.startswith("#")]
    for name in sorted(exclude_paths(str(recipe_dir), patterns, dockerfile=dockerfile)):
        path = recipe_dir / name
        if path.is_file() and not any(part in _ALWAYS_SKIPPED for part in Path(name).parts):
            yield _Entry(PurePosixPath(Path(name)).as_posix(), path)


def _safe_arcname(name: str) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise UsageError(f"extra build file name {name!r} must be a relative path inside the context")
    return path.as_posix()


def _hash(
    entries: list[_Entry],
    base: str,
    build_args: Mapping[str, str],
    labels: Mapping[str, str],
    dockerfile: str,
) -> str:
    digest = hashlib.sha256()
    settings = {"base": base, "args": dict(build_args), "labels": dict(labels), "dockerfile": dockerfile}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for entry in entries:
        content = _file_digest(entry.source) if entry.source else hashlib.sha256(entry.data).hexdigest()
        digest.update(f"\n{entry.arcname}\0{int(entry.executable)}\0{content}".encode())
    return digest.hexdigest()


def _file_digest(path: Path) -> str:
    stat = path.stat()
    return _cached_digest(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


# Keyed on size and mtime: hashing the 190 MB torch wheel once per process is enough.
@functools.lru_cache(maxsize=256)
def _cached_digest(path: str, _size: int, _mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _tar_stream(entries: list[_Entry]) -> Iterator[bytes]:
    """Yield a tar of ``entries`` piece by piece, so a large wheel is never held in memory."""
    for entry in entries:
        info = tarfile.TarInfo(entry.arcname)
        info.size = entry.size()
        info.mode = 0o755 if entry.executable else 0o644
        info.mtime = 0  # content, not timestamps, decides the image (and the builder's cache)
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        sent = 0
        if entry.source is None:
            yield entry.data
            sent = len(entry.data)
        else:
            with open(entry.source, "rb") as handle:
                while sent < info.size and (chunk := handle.read(min(_CHUNK, info.size - sent))):
                    sent += len(chunk)
                    yield chunk
        if sent != info.size:
            raise UsageError(f"{entry.source} changed while it was sent to the build")
        yield b"\0" * (-info.size % tarfile.BLOCKSIZE)
    yield b"\0" * (2 * tarfile.BLOCKSIZE)


def _base_identity(client: docker.DockerClient, base: str) -> str:
    """``base`` plus its local image id when present, so a re-made base changes the hash."""
    image_id = _image_id(client, base)
    return f"{base}@{image_id}" if image_id else base


def _image_id(client: docker.DockerClient, tag: str) -> str | None:
    try:
        return client.images.get(tag).id
    except ImageNotFound:
        return None
    except (DockerException, requests.exceptions.RequestException) as exc:
        raise DockerError(f"cannot look up image {tag}: {exc}", hint="Is the Docker daemon healthy?") from exc


def _failure_hint(tail: Iterable[str], error: str, recipe_dir: Path) -> str:
    text = "\n".join([*tail, error]).lower()
    if "certificate verify failed" in text or "self-signed certificate" in text or "self signed" in text:
        return (
            "TLS is intercepted on this network: give the build the CA bundle that the host "
            "trusts (build.ca_bundle in the profile; the default is the host's own bundle)."
        )
    if "temporary failure in name resolution" in text or "could not resolve" in text:
        return (
            "The build cannot reach the package mirrors: check DNS and proxy settings of the Docker daemon."
        )
    if "no space left on device" in text:
        return (
            "The Docker disk is full: free space with `ops images prune` (what ops builds left behind), "
            "or `docker system prune` (every unused image and the build cache)."
        )
    if "pull access denied" in text or "manifest unknown" in text or "no such host" in text:
        return "The Dockerfile's FROM image cannot be pulled: build FROM the ops base image (ARG BASE)."
    return f"Fix the step that failed in {recipe_dir} (see the log lines), then run again: finished steps are cached."


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"
