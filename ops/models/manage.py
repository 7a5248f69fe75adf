"""Model management outside the host: the catalog, local registrations, pulls, and the host's load/unload."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from ops.errors import ModelError, UsageError
from ops.host.process import status as host_status
from ops.models.catalog import check_catalog
from ops.models.foundry import FoundryProvider, context_length
from ops.models.support import foundry_support
from ops.profiles import LoadedProfile
from ops.settings import Settings
from ops.stack import GATEWAY_KEY
from ops.state import StackState


@dataclass(frozen=True)
class ModelRow:
    """One line of ``ops model list``."""

    where: str  # "profile", "local" or "catalog"
    name: str
    id: str
    state: str  # ready / loading / failed / unloaded / registered / cached / available / not running
    detail: str = ""


@dataclass(frozen=True)
class ModelListing:
    """Everything ``ops model list`` shows, and why the catalog part is missing when it is."""

    rows: list[ModelRow]
    catalog_note: str


def _runtime(settings: Settings) -> FoundryProvider:
    runtime = FoundryProvider(
        settings.home / "foundry", settings.home / "logs", web_url=None, catalog_url=settings.catalog_url
    )
    runtime.start()
    return runtime


def profile_rows(loaded: LoadedProfile, settings: Settings) -> list[ModelRow]:
    """The profile's models as the running host sees them (or ``not running``)."""
    state = StackState.for_stack(loaded.name, settings)
    current = host_status(state)
    rows = []
    cards: dict[str, dict] = {}
    key = state.secrets.get(GATEWAY_KEY)
    if current.running and current.info and key:
        try:
            response = httpx.get(
                f"{current.info.url}/v1/models",
                headers={"authorization": f"Bearer {key.reveal()}"},
                timeout=5,
            )
            cards = {card["id"]: card for card in response.json().get("data", [])}
        except (httpx.HTTPError, ValueError):
            cards = {}
    health = (current.health or {}).get("models", {})
    for alias, spec in loaded.profile.models.items():
        where = spec.catalog or spec.url or str(loaded.model_dirs.get(alias, ""))
        state_text = health.get(alias, "not running" if not current.running else "skipped")
        rows.append(
            ModelRow("profile", alias, cards.get(alias, {}).get("upstream_id", ""), state_text, where)
        )
    return rows


def local_rows(settings: Settings) -> list[ModelRow]:
    """Models registered in this machine's Foundry Local cache (bring-your-own folders); none without it."""
    if not foundry_support().available:  # the catalog note says why (see catalog_rows)
        return []
    runtime = _runtime(settings)
    from foundry_local_sdk import CatalogType

    rows = []
    for model in runtime.manager.get_catalog(CatalogType.LOCAL).list_models():
        rows.append(ModelRow("local", model.alias, model.id, "registered", model.get_path()))
    return rows


def catalog_rows(settings: Settings, timeout: float | None = None) -> tuple[list[ModelRow], str]:
    """The Foundry catalog's models, or none and a one-line reason when it cannot be reached in time."""
    support = foundry_support()
    if not support.available:
        return [], support.reason
    timeout = timeout or settings.catalog_timeout
    reach = check_catalog(timeout, settings.catalog_url)
    if not reach.reachable:
        return [], reach.reason
    runtime = _runtime(settings)
    # Listing may still stall on a flaky network: bound it rather than hang the command.
    pool = concurrent.futures.ThreadPoolExecutor(1)
    future = pool.submit(runtime.manager.catalog.list_models)
    try:
        models = future.result(timeout=max(timeout * 5, 15))
    except concurrent.futures.TimeoutError:
        pool.shutdown(wait=False, cancel_futures=True)
        return [], "the Foundry catalog answered but listing its models timed out"
    pool.shutdown(wait=False)
    rows = [ModelRow("catalog", m.alias, m.id, "cached" if m.is_cached else "available") for m in models]
    return rows, reach.reason


def require_catalog(alias: str, settings: Settings) -> None:
    """Raise a :class:`ModelError` at once when the catalog cannot be reached (instead of hanging)."""
    reach = check_catalog(settings.catalog_timeout, settings.catalog_url)
    if not reach.reachable:
        raise ModelError(
            f"cannot download {alias!r}: {reach.reason}",
            hint="connect to the network (or set OPS_CATALOG_TIMEOUT higher on a slow link) and retry",
        )


def pull(alias: str, settings: Settings, progress: Callable[[float], None]) -> str:
    """Download catalog model ``alias`` into the shared cache (the runtime resumes partial downloads)."""
    require_catalog(alias, settings)
    runtime = _runtime(settings)
    model = runtime.manager.catalog.get_model(alias)
    if model is None:
        raise ModelError(
            f"{alias!r} is not in the Foundry catalog", hint="`ops model list` shows the catalog's aliases"
        )
    if not model.is_cached:
        model.download(lambda pct: progress(pct / 100.0))
    progress(1.0)
    return model.id


def add(folder: Path, alias: str | None, settings: Settings) -> ModelRow:
    """Register an ONNX Runtime GenAI folder with Foundry Local (idempotent)."""
    folder = folder.expanduser().resolve()
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder", hint="give the folder that holds genai_config.json")
    if not (folder / "genai_config.json").is_file():
        raise UsageError(
            f"{folder} has no genai_config.json",
            hint="give an ONNX Runtime GenAI model folder (made by onnxruntime_genai.models.builder)",
        )
    name = alias or folder.name.lower()
    runtime = _runtime(settings)
    model = runtime.register_local(name, folder)
    return ModelRow("local", name, model.id, "registered", f"context {context_length(folder)}")


def control(loaded: LoadedProfile, alias: str, action: str, settings: Settings) -> dict:
    """Ask the stack's running host to load or unload ``alias``."""
    state = StackState.for_stack(loaded.name, settings)
    current = host_status(state)
    if not current.running or current.info is None:
        raise ModelError(
            f"the model host of stack {loaded.name} is not running", hint=f"run `ops up {loaded.name}`"
        )
    key = state.secrets.get(GATEWAY_KEY)
    response = httpx.post(
        f"{current.info.url}/ops/models/{alias}/{action}",
        headers={"authorization": f"Bearer {key.reveal() if key else ''}"},
        timeout=600,
    )
    if response.status_code != 200:
        message = response.json().get("error", {}).get("message", response.text)
        raise ModelError(f"{action} {alias!r}: {message}", hint="`ops model list` shows the stack's models")
    return response.json()
