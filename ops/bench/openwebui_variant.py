"""The profile variants the Open WebUI wait benchmark brings up: the chat model and service it uses,
and a copy of the profile with an environment override and a counted virtual model."""

from __future__ import annotations

from pathlib import Path

import yaml

from ops import profiles
from ops.errors import OpsError
from ops.profiles import LoadedProfile
from ops.services.openwebui import KIND

#: The gateway's virtual model the benchmark chats with, so its router counts every chat request.
COUNTED = "ops-bench-counted"
#: How long one answer may take (the counted virtual model's first-byte timeout too).
ANSWER_TIMEOUT_MS = 180_000


def chat_model(loaded: LoadedProfile, wanted: str | None = None) -> str:
    """The chat model the benchmark talks to: ``wanted``, else the profile's first chat model on this machine."""
    models = loaded.profile.models
    if wanted:
        if wanted not in models:
            raise OpsError(f"no model {wanted!r} in the profile", hint=f"pick one of: {', '.join(models)}")
        return wanted
    for alias, spec in models.items():
        if spec.task == "chat" and not spec.url:
            return alias
    raise OpsError("the profile has no local chat model", hint="add one under `models:` or pass --model")


def service_name(loaded: LoadedProfile) -> str:
    """The profile's Open WebUI service."""
    for name, service in loaded.profile.services.items():
        if service.kind == KIND and service.enabled:
            return name
    raise OpsError(f"the profile has no enabled {KIND} service", hint="add one, as in profiles/offline.yaml")


def write_variant(
    loaded: LoadedProfile, service: str, model: str, environment: dict[str, str], path: Path
) -> LoadedProfile:
    """Write ``loaded``'s profile to ``path`` with ``environment`` added to ``service``'s and the counted
    virtual model on its gateway; return it loaded.

    A file, not an in-memory copy: the model host is a child process that reads its profile from disk.
    Paths relative to the original profile's folder are made absolute, so they name the same folders.
    """
    raw = relocatable(loaded)
    raw["name"] = loaded.name  # the file name no longer gives it
    wired = raw["services"][service]
    wired["environment"] = {**(wired.get("environment") or {}), **environment}
    gateway = raw.setdefault("gateway", {}) or {}
    raw["gateway"] = gateway
    routing = gateway.setdefault("routing", {}) or {}
    gateway["routing"] = routing
    routing.setdefault("models", {})[COUNTED] = {"default": [model], "timeout": ANSWER_TIMEOUT_MS / 1000}
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return profiles.load_path(path)


def relocatable(loaded: LoadedProfile) -> dict:
    """``loaded``'s profile as raw YAML data whose folders (model paths, host volumes, build contexts, CA
    bundles) are absolute, so a copy written elsewhere names the same folders."""
    raw = yaml.safe_load(loaded.path.read_text(encoding="utf-8"))
    for alias, spec in (raw.get("models") or {}).items():
        if isinstance(spec, dict) and spec.get("path") and alias in loaded.model_dirs:
            spec["path"] = str(loaded.model_dirs[alias])
    for spec in (raw.get("services") or {}).values():
        spec["volumes"] = [_absolute_volume(v, loaded.path.parent) for v in spec.get("volumes") or []]
        for key in ("context", "ca_bundle"):
            if (spec.get("build") or {}).get(key):
                spec["build"][key] = str(_absolute(spec["build"][key], loaded.path.parent))
    return raw


def _absolute(value: str, folder: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (folder / path).resolve()


def _absolute_volume(volume, folder: Path):
    """A service's volume entry with a relative host folder made absolute (named volumes unchanged)."""
    if isinstance(volume, str):
        source, _, rest = volume.partition(":")
        return f"{_absolute(source, folder)}:{rest}" if source.startswith((".", "~")) else volume
    if isinstance(volume, dict) and str(volume.get("source", "")).startswith((".", "~")):
        return {**volume, "source": str(_absolute(volume["source"], folder))}
    return volume
