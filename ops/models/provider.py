"""The provider Protocol and registry: where models come from and run.

A provider turns a profile's model entry into a gateway :class:`~ops.gateway.Route`:
it registers or downloads the model, loads it, and says which OpenAI-compatible URL and
model id serve it. Built-ins (``foundry``, ``openai``) register the way a plug-in would.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ops.errors import UsageError
from ops.gateway.table import Route

if TYPE_CHECKING:  # only an annotation here: the profile schema (pydantic) is not imported at run time
    from ops.profiles.schema import ModelSpec

#: Progress callback: (alias, fraction done 0..1 or None when unknown, message).
Progress = Callable[[str, float | None, str], None]


class Provider(Protocol):
    """Where models come from and run."""

    name: str

    def start(self) -> None:
        """Bring the provider's runtime up (idempotent)."""

    def prepare(self, alias: str, spec: ModelSpec, folder: Path | None, progress: Progress) -> Route:
        """Register or download, then load ``alias``; return where requests for it go."""

    def load(self, alias: str) -> None:
        """Load a model that was prepared and later unloaded."""

    def unload(self, alias: str) -> None:
        """Free a loaded model's memory; it stays registered."""

    def close(self) -> None:
        """Release everything (unload models, stop servers)."""


_FACTORIES: dict[str, Callable[..., Provider]] = {}


def register(name: str, factory: Callable[..., Provider]) -> None:
    """Register a provider factory under ``name``."""
    _FACTORIES[name] = factory


def create(name: str, **kwargs) -> Provider:
    """A new provider ``name``; an unknown name lists the valid ones."""
    if name not in _FACTORIES:
        raise UsageError(
            f"unknown model provider {name!r}", hint=f"valid providers: {', '.join(sorted(_FACTORIES))}"
        )
    return _FACTORIES[name](**kwargs)


def names() -> list[str]:
    """Registered provider names."""
    return sorted(_FACTORIES)
