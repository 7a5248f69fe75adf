"""Which image a service runs, and where it comes from: present, pulled, or built from its recipe.

The policy is a profile setting (DESIGN decision 3): ``pull`` insists on the named image,
``build`` always uses the recipe in ``stacks/<kind>/``, and ``pull-or-build`` (the default)
uses the named image when it is here or can be pulled, else builds the recipe. Hosts without a
registry fail a pull within seconds, so the fallback costs little.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import docker
import requests
from docker.errors import DockerException, ImageNotFound
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from ops.errors import DockerError, OpsError, UsageError
from ops.images.base import MANAGED_LABEL
from ops.images.build import (
    RECIPE_HASH_LABEL,
    RECIPE_LABEL,
    BuildError,
    build_recipe,
    image_up_to_date,
    recipe_hash,
)
from ops.images.reuse import reuse_build

Progress = Callable[[str], None]
Policy = Literal["pull", "build", "pull-or-build"]
Source = Literal["present", "pulled", "built", "cached-build"]
POLICIES: tuple[str, ...] = ("pull", "build", "pull-or-build")

# With no registry the daemon answers "no such host" at once; this bounds the other case, a
# network that silently drops packets, where each read would otherwise wait for minutes.
PULL_TIMEOUT_S = 20
# Failures that a second try can fix; anything else (no such host, not found, denied) cannot.
_TRANSIENT = ("connection reset by peer", "unexpected eof", "502 bad gateway", "503 service", "504 gateway")


@dataclass(frozen=True)
class ImageResult:
    """The image a service will run: its reference, how it got here, and why."""

    tag: str
    source: Source
    detail: str


@dataclass(frozen=True)
class ImageInfo:
    """One image as ``ops images`` would show it, read back from the daemon and its labels."""

    tag: str
    present: bool
    id: str | None = None
    size_bytes: int | None = None
    created: str | None = None
    origin: str = "missing"  # "built", "base", "pulled or loaded", or "missing"
    recipe: str | None = None
    recipe_hash: str | None = None


class _PullFailed(Exception):
    """A pull that did not work; ``reason`` is one line from the daemon."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def ensure_image(
    client: docker.DockerClient,
    *,
    image: str | None,
    recipe_dir: Path | None,
    policy: str,
    build_tag: str,
    ca_bundle: Path | None,
    build_args: dict[str, str] | None = None,
    progress: Progress | None = None,
    extra_files: dict[str, Path] | None = None,
    labels: dict[str, str] | None = None,
    dockerfile: str = "Dockerfile",
) -> ImageResult:
    """Make the image a service needs available locally, following ``policy``; say what was done.

    ``image`` is the registry reference (may be None for kinds that are only ever built),
    ``recipe_dir`` the folder to build from, ``build_tag`` the tag a build gets. ``extra_files``
    default to what :func:`recipe_extra_files` finds for the recipe folder's name. Raises
    :class:`DockerError` when the policy cannot be satisfied, :class:`UsageError` when the
    inputs contradict the policy.
    """
    if policy not in POLICIES:
        raise UsageError(f"unknown image policy {policy!r}", hint=f"valid policies: {', '.join(POLICIES)}")
    say = progress or (lambda _line: None)
    recipe = None
    if recipe_dir is not None:
        recipe = _Recipe(
            client, recipe_dir, build_tag, ca_bundle, build_args, labels, extra_files, say, dockerfile
        )

    def build() -> ImageResult:
        if recipe is None:
            raise UsageError(
                f"no recipe to build {build_tag} from", hint="Name an image, or a build context."
            )
        return recipe.build()

    if policy == "build":
        return build()
    if image is None:
        if policy == "pull":
            raise UsageError(
                "image_policy pull needs an image name", hint="Set image:, or image_policy: build."
            )
        return build()

    if _get(client, image) is not None and not _is_stale_build(client, image, recipe):
        return ImageResult(image, "present", f"{image} is already on this machine")
    if policy == "pull-or-build" and recipe is not None:
        # An earlier fallback build that is still current wins over a new pull attempt: a
        # second `ops up` on an air-gapped host must not wait for a registry again.
        with contextlib.suppress(OpsError):
            cached = recipe.current()
            if cached is not None:
                return replace(cached, detail=f"{cached.detail} (used instead of pulling {image})")

    try:
        _pull(client, image, say)
        return ImageResult(image, "pulled", f"pulled {image}")
    except _PullFailed as failed:
        pull_reason = failed.reason
    if policy == "pull" or recipe is None:
        hint = (
            f"Set image_policy: build to build it from {recipe_dir} instead."
            if recipe is not None
            else "Check the image name and registry access, or load it with `docker load`."
        )
        raise DockerError(f"cannot pull image {image}: {pull_reason}", hint=hint)

    say(f"cannot pull {image} ({pull_reason}); building it from {recipe_dir}")
    try:
        built = recipe.build()
    except OpsError as exc:
        raise BuildError(
            f"image {image} can neither be pulled ({pull_reason}) nor built ({exc.message.splitlines()[0]})",
            hint=exc.hint or "Make the registry reachable, or fix the recipe.",
            log_tail=getattr(exc, "log_tail", ()),
        ) from exc
    return replace(built, detail=f"{built.detail}, because pulling {image} failed: {pull_reason}")


def default_build_tag(recipe_dir: Path) -> str:
    """The tag a recipe's image gets when it is built locally: ``ops-<recipe folder>:local``."""
    return f"ops-{recipe_dir.name}:local"


def describe_images(client: docker.DockerClient, tags: Iterable[str] | None = None) -> list[ImageInfo]:
    """Describe ``tags`` (default: every image ``ops`` made) and where each came from, from labels."""
    if tags is None:
        try:
            images = client.images.list(filters={"label": f"{MANAGED_LABEL}=true"})
        except (DockerException, requests.exceptions.RequestException) as exc:
            raise DockerError(f"cannot list images: {exc}", hint="Is the Docker daemon healthy?") from exc
        found = [(tag, image) for image in images for tag in (image.tags or [image.short_id])]
    else:
        found = [(tag, _get(client, tag)) for tag in tags]
    return [_info(tag, image) for tag, image in sorted(found, key=lambda pair: pair[0])]


@dataclass(frozen=True)
class _Recipe:
    """A recipe folder and everything its build takes."""

    client: docker.DockerClient
    folder: Path
    tag: str
    ca_bundle: Path | None
    build_args: dict[str, str] | None
    labels: dict[str, str] | None
    extra_files: dict[str, Path] | None  # None: what recipe_extra_files finds
    say: Progress
    dockerfile: str = "Dockerfile"

    def current(self) -> ImageResult | None:
        """The existing build when it matches the recipe as it is now, else None."""
        digest = recipe_hash(self.client, self.folder, **self._inputs())
        if image_up_to_date(self.client, self.tag, digest) or reuse_build(
            self.client, self.tag, digest, self.say
        ):
            return ImageResult(
                self.tag, "cached-build", f"{self.tag} is current with recipe {self.folder.name}"
            )
        return None

    def build(self) -> ImageResult:
        """Build unless the existing build is current."""
        if (cached := self.current()) is not None:
            return cached
        build_recipe(self.client, self.folder, self.tag, progress=self.say, **self._inputs())
        return ImageResult(self.tag, "built", f"built {self.tag} from recipe {self.folder.name}")

    def _inputs(self) -> dict:
        if self.extra_files is None:
            files = recipe_extra_files(self.folder.name) | assembled_files(self.folder)
        else:
            files = self.extra_files
        return {
            "ca_bundle": self.ca_bundle,
            "build_args": self.build_args,
            "labels": self.labels,
            "extra_files": files,
            "dockerfile": self.dockerfile,
        }


def _is_stale_build(client: docker.DockerClient, image: str, recipe: _Recipe | None) -> bool:
    """True when ``image`` is our own build of an older recipe (its build tag used as the image name)."""
    if recipe is None or image != recipe.tag:
        return False
    try:
        return recipe.current() is None
    except OpsError:  # it cannot be rebuilt here anyway (a missing wheel): keep what is present
        return False


def _pull(client: docker.DockerClient, image: str, say: Progress) -> None:
    """Pull ``image`` with progress lines; raise :class:`_PullFailed` with the daemon's reason."""
    try:
        _pull_with_retries(client, image, say)
    except _PullFailed:
        raise
    except requests.exceptions.Timeout as exc:
        raise _PullFailed(f"no answer from the registry within {PULL_TIMEOUT_S} s") from exc
    except (DockerException, requests.exceptions.RequestException) as exc:
        raise _PullFailed(_reason(exc)) from exc
    if _get(client, image) is None:
        raise _PullFailed("the pull ended without the image")


@retry(
    retry=retry_if_exception(lambda exc: isinstance(exc, _PullFailed) and _transient(exc.reason)),
    stop=stop_after_attempt(3),
    wait=wait_exponential(multiplier=1, max=8),
    reraise=True,
)
def _pull_with_retries(client: docker.DockerClient, image: str, say: Progress) -> None:
    say(f"pulling {image}")
    last: dict[str, str] = {}
    with _request_timeout(client, PULL_TIMEOUT_S):
        for message in client.api.pull(image, stream=True, decode=True):
            if message.get("error"):
                raise _PullFailed(_first_line(str(message["error"])))
            status, layer = str(message.get("status", "")), str(message.get("id", ""))
            # One line per layer and phase; the byte counters would be hundreds of lines.
            if status and last.get(layer) != status:
                last[layer] = status
                say(f"{layer}: {status}" if layer else status)


def _transient(reason: str) -> bool:
    return any(mark in reason.lower() for mark in _TRANSIENT)


@contextlib.contextmanager
def _request_timeout(client: docker.DockerClient, seconds: float) -> Iterator[None]:
    """docker-py's pull takes no timeout of its own; it uses the client's per-request one."""
    saved = client.api.timeout
    client.api.timeout = seconds
    try:
        yield
    finally:
        client.api.timeout = saved


def _get(client: docker.DockerClient, tag: str):
    try:
        return client.images.get(tag)
    except ImageNotFound:
        return None
    except (DockerException, requests.exceptions.RequestException) as exc:
        raise DockerError(f"cannot look up image {tag}: {exc}", hint="Is the Docker daemon healthy?") from exc


def _info(tag: str, image) -> ImageInfo:
    if image is None:
        return ImageInfo(tag=tag, present=False)
    labels = image.labels or {}
    if labels.get(RECIPE_HASH_LABEL):
        origin = "built"
    elif labels.get("ops.base.source"):
        origin = "base"
    else:
        origin = "pulled or loaded"
    attrs = image.attrs or {}
    return ImageInfo(
        tag=tag,
        present=True,
        id=image.id,
        size_bytes=attrs.get("Size"),
        created=attrs.get("Created"),
        origin=origin,
        recipe=labels.get(RECIPE_LABEL),
        recipe_hash=labels.get(RECIPE_HASH_LABEL),
    )


def _reason(exc: BaseException) -> str:
    return _first_line(str(getattr(exc, "explanation", None) or exc))


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


# --- Files a recipe needs from the host -------------------------------------------------------


def assembled_files(recipe_dir: Path) -> dict[str, Path]:
    """Files a recipe fetches instead of committing them: its ``assemble.py``'s ``runtime_files()``.

    A recipe folder may ship an ``assemble.py`` defining ``runtime_files() -> {context path: file}``
    (the WebGPU demo fetches onnxruntime-web from npm this way, once, into a cache).
    """
    script = recipe_dir / "assemble.py"
    if not script.is_file():
        return {}
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"ops_recipe_{recipe_dir.name.replace('-', '_')}", script)
    assert spec is not None and spec.loader is not None  # an existing .py file always gets a source loader
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        return dict(module.runtime_files())
    except OpsError:
        raise
    except Exception as exc:  # a recipe's own script: report it as a build problem, not a crash
        raise DockerError(
            f"recipe {recipe_dir.name}: assemble.py could not fetch its files: {exc}",
            hint=f"run `python {script} --out build/{recipe_dir.name}` to see the whole error",
        ) from None


def recipe_extra_files(
    recipe: str, *, arch: str | None = None, env: dict[str, str] | None = None
) -> dict[str, Path]:
    """Host files that the recipe folder ``recipe`` needs in its build context (context path -> file).

    The service kind built from that recipe says which (its ``extra_build_files`` hook; Open WebUI's
    needs a CPU torch wheel from where the host's pip looks). A recipe no kind claims, or whose
    kind needs nothing, needs nothing. Raises :class:`DockerError` when a needed file is missing.
    """
    from ops import services

    kind = services.by_recipe(recipe)
    if kind is None or kind.extra_build_files is None:
        return {}
    return kind.extra_build_files(arch=arch, env=env)
