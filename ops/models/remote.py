"""The ``openai`` provider: a model served by any OpenAI-compatible URL (cloud, another Foundry, vLLM...)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from ops.errors import ModelError, ModelUnavailable
from ops.gateway.table import Route
from ops.models import provider
from ops.models.provider import Progress
from ops.profiles.schema import ModelSpec
from ops.secrets import Secret


class OpenAIProvider:
    """Routes to an OpenAI-compatible server; nothing to load, so it only checks the model is listed."""

    name = "openai"

    def __init__(self, timeout: float = 10.0, **_ignored):
        self.timeout = timeout

    def start(self) -> None:
        """Nothing to start."""

    def prepare(self, alias: str, spec: ModelSpec, folder: Path | None, progress: Progress) -> Route:
        """Check that ``spec.url`` answers and lists the model; return its route."""
        assert spec.url is not None
        key = None
        if spec.api_key_env:
            value = os.environ.get(spec.api_key_env)
            if not value:
                raise ModelUnavailable(
                    f"model {alias!r}: environment variable {spec.api_key_env} is empty",
                    hint=f"export {spec.api_key_env}=<key> before `ops up`",
                )
            key = Secret(value)
        base = spec.url.rstrip("/")
        model_id = spec.model or alias
        progress(alias, None, f"checking {base}")
        headers = {"authorization": f"Bearer {key.reveal()}"} if key else {}
        try:
            response = httpx.get(f"{base}/models", headers=headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise ModelError(
                f"model {alias!r}: {base} unreachable ({type(exc).__name__})",
                hint="check the URL and that the server runs",
            ) from None
        if response.status_code in (401, 403):
            raise ModelError(
                f"model {alias!r}: {base} refused the key (HTTP {response.status_code})", hint="check the key"
            )
        if response.status_code == 200:
            ids = [m.get("id") for m in response.json().get("data", [])]
            if ids and model_id not in ids:
                raise ModelError(
                    f"model {alias!r}: {base} does not list {model_id!r}",
                    hint=f"set `model:` to one of: {', '.join(map(str, ids[:10]))}",
                )
        return Route(
            alias,
            model_id,
            base,
            provider=self.name,
            task=spec.task,
            context=spec.context,
            api_key=key,
            remote=spec.leaves_machine,
        )

    def load(self, alias: str) -> None:
        """Remote models are always loaded."""

    def unload(self, alias: str) -> None:
        """Remote models cannot be unloaded from here."""

    def close(self) -> None:
        """Nothing to release."""


provider.register("openai", OpenAIProvider)
