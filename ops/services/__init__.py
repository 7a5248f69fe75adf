"""Service kinds: the defaults and wiring for one kind of container, registered by name.

A kind knows its default image, the recipe folder under ``stacks/`` that builds it where
no registry answers, its container port, data path and health path. A profile may override
every default. Built-ins register the same way a plug-in would, through :func:`register`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ops.errors import UsageError


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


register(
    ServiceKind(
        name="open-webui",
        description="Open WebUI chat interface, wired to the gateway",
        # Pinned to a release: the seed's moving `:main` tag changes under a class mid-workshop.
        image="ghcr.io/open-webui/open-webui:v0.12.4",
        recipe="open-webui",
        port=8080,
        host_port=3000,
        data_path="/app/backend/data",
        health_path="/health",
    )
)
register(
    ServiceKind(
        name="chainlit-rag",
        description="Chainlit chat app with retrieval over local documents",
        image=None,
        recipe="chainlit-rag",
        port=8000,
        host_port=8501,
        data_path="/data",
        health_path="/health",
    )
)
register(
    ServiceKind(
        name="webgpu-demo",
        description="Static WebGPU / WASM digits classifier served over http",
        image=None,
        recipe="webgpu-demo",
        port=8080,
        host_port=8502,
        health_path="/",
    )
)
register(
    ServiceKind(
        name="container",
        description="Any image: nothing is defaulted, the profile gives image and ports",
    )
)
