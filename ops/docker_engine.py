"""Connect to the Docker engine and describe it.

Everything in ``ops`` that talks to Docker gets its client from :func:`connect`, so an
unreachable daemon is reported once, the same way: a :class:`~ops.errors.DockerError`
naming the endpoint that was tried, with a hint, instead of a docker-py traceback.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeAlias

import docker
import requests
from docker.context import ContextAPI
from docker.errors import DockerException
from docker.utils import kwargs_from_env

from ops.errors import DockerError

DEFAULT_ENDPOINT = "unix:///var/run/docker.sock"

#: A docker-py container (``docker.models.containers.Container``). docker-py ships no type
#: information, so to the type checker this is ``Any``; the name says what the value is.
Container: TypeAlias = Any
#: A docker-py volume (``docker.models.volumes.Volume``), untyped for the same reason.
Volume: TypeAlias = Any


def start_hint(platform: str | None = None, target: str | None = None) -> str:
    """How to get an engine answering, for the platform ``ops`` runs on and the endpoint it tried.

    ``ops`` installs and starts an engine only on Linux, as root, through ``just docker``; Docker
    Desktop (Windows, macOS, and Linux when its context is in use) is started by its user.
    """
    platform = platform or sys.platform
    target = endpoint() if target is None else target
    point = "or point DOCKER_HOST at a running engine."
    if platform == "win32":
        return (
            "Start Docker Desktop (Start menu, or in PowerShell "
            '`Start-Process "$Env:ProgramFiles\\Docker\\Docker\\Docker Desktop.exe"`) and wait until it says '
            f"the engine is running; ops never installs or starts an engine on Windows; {point}"
        )
    if platform == "darwin":
        return (
            "Start Docker Desktop (`open -a Docker`) and wait until it says the engine is running; "
            f"ops never installs or starts an engine on macOS; {point}"
        )
    if "/.docker/desktop/" in target:
        return f"Start Docker Desktop (`systemctl --user start docker-desktop`), {point}"
    return (
        "Start the Docker daemon (`just docker` as root installs and starts one, `sudo systemctl start docker`, "
        f"or Docker Desktop), {point}"
    )


def _group_hint(platform: str | None = None) -> str:
    if (platform or sys.platform) == "win32":
        return "Add your user to the `docker-users` group (then sign out and in again). "
    return "Add your user to the `docker` group (then log in again), or run as root. "


@dataclass(frozen=True)
class EngineInfo:
    """What the connected Docker engine says about itself."""

    server_version: str
    api_version: str
    os: str
    storage_driver: str


def endpoint() -> str:
    """Return the endpoint :func:`connect` will try, resolved the way ``docker.from_env`` does.

    ``DOCKER_HOST`` wins, then the current Docker CLI context, then the default socket.
    """
    base_url = kwargs_from_env().get("base_url")
    if not base_url:
        try:
            base_url = ContextAPI.kwargs_from_context().get("base_url")
        except DockerException:
            # A broken CLI context makes from_env fail too; connect() reports that failure.
            base_url = None
    return base_url or DEFAULT_ENDPOINT


def connect(timeout: float = 5, work_timeout: float | None = None) -> docker.DockerClient:
    """Return a client for the local Docker daemon, checked with a ping.

    ``timeout`` bounds the version negotiation and the ping, and stays the client's default
    per-request timeout unless ``work_timeout`` is given: commands that change things (``up``,
    ``down``) pass a long one, because a busy daemon can take tens of seconds to remove a large
    container, and a 5 s read timeout then aborted ``ops up`` half-way with the container stuck in
    "Removal In Progress". Raises :class:`DockerError` when the daemon does not answer.
    """
    target = endpoint()
    client = None
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except (DockerException, requests.exceptions.RequestException, OSError) as exc:
        if client is not None:
            client.close()
        reason, hint = _explain(exc, target, timeout)
        raise DockerError(f"Docker daemon not reachable at {target}: {reason}", hint=hint) from exc
    if work_timeout is not None:
        client.api.timeout = work_timeout
    return client


def engine_info(client: docker.DockerClient) -> EngineInfo:
    """Describe the engine behind ``client``: versions, OS and storage driver."""
    try:
        version = client.version()
        info = client.info()
    except (DockerException, requests.exceptions.RequestException) as exc:
        raise DockerError(f"Docker daemon stopped answering: {_first_line(exc)}", hint=start_hint()) from exc
    return EngineInfo(
        server_version=version.get("Version", "unknown"),
        api_version=version.get("ApiVersion", "unknown"),
        os=f"{version.get('Os', 'unknown')}/{version.get('Arch', 'unknown')}",
        storage_driver=info.get("Driver", "unknown"),
    )


def _explain(exc: BaseException, target: str, timeout: float) -> tuple[str, str]:
    """Turn a docker-py/requests failure into a short reason and a hint that fits it."""
    # docker-py wraps the socket error several layers deep and stringifies it into a
    # multi-line message; the root cause says what the user should do.
    causes = list(_chain(exc))
    if any(isinstance(c, PermissionError) for c in causes):
        return "permission denied", _group_hint() + start_hint(target=target)
    if any(isinstance(c, FileNotFoundError) for c in causes):
        return "no socket there", start_hint(target=target)
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return "connection refused", start_hint(target=target)
    if any(isinstance(c, TimeoutError | socket.timeout | requests.exceptions.Timeout) for c in causes):
        return f"no answer within {timeout:g} s", start_hint(target=target)
    for cause in causes:
        response = getattr(cause, "response", None)
        if response is not None and getattr(response, "status_code", None):
            return (
                f"HTTP {response.status_code} from {response.url}, which is not a Docker Engine API",
                "Check DOCKER_HOST: something else listens there. " + start_hint(target=target),
            )
    return _first_line(exc), start_hint(target=target)


def _chain(exc: BaseException):
    """Yield ``exc`` and every exception it was raised from or inside, plus wrapped args."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        # Some layers re-raise a refused connection as a plain OSError with the errno kept.
        if isinstance(current, OSError) and current.errno == errno.ECONNREFUSED:
            yield ConnectionRefusedError(current.errno, current.strerror)
        yield current
        stack.extend(c for c in (current.__cause__, current.__context__) if c is not None)
        # urllib3 and requests keep the socket error in args, not only in __cause__.
        stack.extend(a for a in current.args if isinstance(a, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)


def _first_line(exc: BaseException) -> str:
    """One line of an exception's text, without docker-py's generic prefix."""
    text = str(exc).strip().removeprefix("Error while fetching server API version: ")
    return (text or type(exc).__name__).splitlines()[0]


@contextlib.contextmanager
def refused(what: str) -> Iterator[None]:
    """Docker's own errors inside the block become a :class:`DockerError` that says what ``ops`` was doing."""
    try:
        yield
    except docker.errors.APIError as exc:
        raise DockerError(
            f"Docker refused to {what}: {exc.explanation or exc}", hint="see `docker info` and `ops doctor`"
        ) from None
    except requests.exceptions.RequestException as exc:
        raise DockerError(
            f"Docker did not answer while asked to {what}: {exc}", hint="see `docker info`"
        ) from None
