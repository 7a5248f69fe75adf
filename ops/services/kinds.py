"""The built-in service kinds."""

from __future__ import annotations

from ops.services import (
    BROWSER_DEMO,
    JSON_HEALTH,
    OPENAI_CONNECTION,
    PARTICIPANT_SIGN_IN,
    RAG,
    SIGN_IN,
    ServiceKind,
    chainlit,
    openwebui,
    openwebui_users,
    register,
    webgpu,
)

register(
    ServiceKind(
        name=openwebui.KIND,
        description="Open WebUI chat interface, wired to the gateway",
        # Pinned to a release: the seed's moving `:main` tag changes under a class mid-workshop.
        image="ghcr.io/open-webui/open-webui:v0.12.4",
        recipe=openwebui.RECIPE,
        port=8080,
        host_port=3000,
        data_path="/app/backend/data",
        health_path="/health",
        environment=openwebui.environment,
        chain=openwebui.chain,
        credentials=openwebui.credentials,
        accounts=openwebui_users.ACCOUNTS,
        features=frozenset({OPENAI_CONNECTION, SIGN_IN}),
        benign_log=openwebui.BENIGN_LOG,
        extra_build_files=openwebui.build_files,
        version_arg="OPEN_WEBUI_VERSION",
        version_tag="v{}",
    )
)
register(
    ServiceKind(
        name=chainlit.KIND,
        description="Chainlit chat app with retrieval over local documents",
        image=None,
        recipe=chainlit.RECIPE,
        port=8000,
        host_port=8501,
        data_path="/data",
        health_path="/health",
        environment=chainlit.environment,
        chain=chainlit.chain,
        credentials=chainlit.sign_in_credentials,
        features=frozenset({RAG, JSON_HEALTH, PARTICIPANT_SIGN_IN}),
    )
)
register(
    ServiceKind(
        name=webgpu.KIND,
        description="Static WebGPU / WASM digits classifier served over http",
        image=None,
        recipe=webgpu.RECIPE,
        port=8080,
        host_port=8502,
        health_path="/health",
        chain=webgpu.chain,
        features=frozenset({BROWSER_DEMO}),
        browser_check=webgpu.browser_check,
    )
)
register(
    ServiceKind(
        name="container",
        description="Any image: nothing is defaulted, the profile gives image and ports",
    )
)
