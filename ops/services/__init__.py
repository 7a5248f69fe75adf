"""Service kinds: the defaults and wiring for one kind of container, registered by name.

A kind knows its default image, the recipe folder under ``stacks/`` that builds it where
no registry answers, its container port, data path and health path. A profile may override
every default. Built-ins register the same way a plug-in would, through :func:`register`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ops.errors import UsageError

if TYPE_CHECKING:
    from ops.secrets import Secret, SecretStore


@dataclass(frozen=True)
class StackContext:
    """What a kind needs to wire its container to the stack."""

    stack: str
    gateway_port: int
    gateway_key: Secret
    secrets: SecretStore
    models: tuple[str, ...]

    @property
    def gateway_url(self) -> str:
        """The gateway as containers reach it."""
        return f"http://host.docker.internal:{self.gateway_port}/v1"


@dataclass(frozen=True)
class ChainReport:
    """What a kind's end-to-end check found: the models it sees and one answer through it."""

    models: tuple[str, ...]
    answer: str
    detail: str = ""


@dataclass(frozen=True)
class ServiceKind:
    """Defaults of one kind of service."""

    name: str
    description: str
    image: str | None = None
    recipe: str | None = None
    port: int | None = None
    host_port: int | None = None
    data_path: str | None = None
    health_path: str | None = None
    #: Environment wiring the container to the stack (gateway URL, key, generated secrets).
    environment: Callable[[StackContext], dict[str, str | Secret]] | None = field(default=None, compare=False)
    #: End-to-end check through the service's own API, given its base URL on the host.
    chain: Callable[[StackContext, str, float], ChainReport] | None = field(default=None, compare=False)

    @property
    def needs_image(self) -> bool:
        """A kind without a default image or recipe needs the profile to name an image."""
        return self.image is None and self.recipe is None


_KINDS: dict[str, ServiceKind] = {}


def register(kind: ServiceKind) -> ServiceKind:
    """Register ``kind`` under its name (a later registration replaces an earlier one)."""
    _KINDS[kind.name] = kind
    return kind


def names() -> list[str]:
    """Names of the registered kinds."""
    return sorted(_KINDS)


def get(name: str) -> ServiceKind:
    """The kind called ``name``; an unknown name lists the valid ones."""
    try:
        return _KINDS[name]
    except KeyError:
        raise UsageError(
            f"unknown service kind {name!r}", hint=f"valid kinds: {', '.join(names())}"
        ) from None


# The built-in kinds register themselves the way a plug-in would.
from ops.services import kinds  # noqa: E402, F401
