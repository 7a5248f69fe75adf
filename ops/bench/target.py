"""Where ``ops bench`` and ``ops compare`` send requests: a stack's gateway or any OpenAI-compatible URL."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ops.errors import ModelError, UsageError
from ops.settings import Settings


@dataclass(frozen=True)
class Target:
    """A chat endpoint: base URL (ending in ``/v1``), its key, and what is known about its models."""

    url: str
    key: str | None = field(default=None, repr=False)
    stack: str | None = None
    results_dir: Path = Path(".")
    #: ``local`` or ``cloud`` for each model name the profile declares (aliases included).
    locality: dict[str, str] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        """The bearer header, when there is a key."""
        return {"authorization": f"Bearer {self.key}"} if self.key else {}


def _locality(loaded) -> dict[str, str]:
    where = {
        alias: "cloud" if spec.leaves_machine else "local" for alias, spec in loaded.profile.models.items()
    }
    for alias, to in loaded.profile.gateway.aliases.items():
        if to in where:
            where[alias] = where[to]
    return where


def resolve(
    profile: str | None,
    url: str | None = None,
    key_env: str | None = None,
    settings: Settings | None = None,
) -> Target:
    """The running host of ``profile`` (key from its secrets), or ``url`` with the key in ``$key_env``.

    With ``url``, a ``profile`` given as well only says which models are local and where results go.
    """
    from ops import profiles
    from ops.host import process
    from ops.stack import GATEWAY_KEY
    from ops.state import StackState

    settings = settings or Settings.from_env()
    if url:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--url must start with http:// or https://, got {url!r}")
        key = None
        if key_env:
            key = os.environ.get(key_env)
            if not key:
                raise UsageError(
                    f"environment variable {key_env} is not set", hint=f"export {key_env}=<the API key>"
                )
        loaded = profiles.load(profile) if profile else None
        results = StackState.for_stack(loaded.name, settings).root if loaded else settings.home
        return Target(
            url=url.rstrip("/"),
            key=key,
            stack=None,
            results_dir=results / "bench",
            locality=_locality(loaded) if loaded else {},
        )
    loaded = profiles.load(profile or "workshop")
    state = StackState.for_stack(loaded.name, settings)
    host = process.status(state)
    secret = state.secrets.get(GATEWAY_KEY)
    if not host.running or host.info is None or secret is None:
        raise ModelError(
            f"the model host of {loaded.name} is not running",
            hint=f"run `ops up {loaded.name}`, or point --url at another OpenAI-compatible gateway",
        )
    return Target(
        url=f"{host.info.url}/v1",
        key=secret.reveal(),
        stack=loaded.name,
        results_dir=state.root / "bench",
        locality=_locality(loaded),
    )


def model_cards(target: Target, hint: str, timeout: float = 10.0, transport=None) -> list[dict]:
    """The model cards the endpoint lists (``/v1/models``); one that cannot be asked is a :class:`ModelError`."""
    try:
        with httpx.Client(timeout=timeout, transport=transport) as client:
            response = client.get(f"{target.url}/models", headers=target.headers)
            response.raise_for_status()
            cards = response.json().get("data") or []
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        raise ModelError(f"cannot list the models at {target.url}: {exc}", hint=hint) from None
    return [c for c in cards if isinstance(c, dict) and isinstance(c.get("id"), str)]


def default_model(target: Target, timeout: float = 10.0) -> str:
    """The first ready model the endpoint lists (``/v1/models``)."""
    cards = model_cards(target, "name the model with --model", timeout)
    ready = [c["id"] for c in cards if c.get("ready", True)]
    if not ready:
        raise ModelError(f"{target.url} lists no ready model", hint="name the model with --model")
    return ready[0]
