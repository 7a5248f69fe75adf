"""The built-in service kinds."""

from __future__ import annotations

from ops.services import ServiceKind, chainlit, openwebui, register, webgpu

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
        environment=openwebui.environment,
        chain=openwebui.chain,
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
        environment=chainlit.environment,
        chain=chainlit.chain,
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
        health_path="/health",
        chain=webgpu.chain,
    )
)
register(
    ServiceKind(
        name="container",
        description="Any image: nothing is defaulted, the profile gives image and ports",
    )
)
