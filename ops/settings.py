"""Every ``OPS_*`` environment setting, in one place.

Precedence everywhere is: CLI flag > profile > ``OPS_*`` environment > default.
This module only answers the environment and default part.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: Root of all state (per-stack folders, secrets, logs). Default: ``$XDG_STATE_HOME/ops``.
OPS_HOME = "OPS_HOME"
#: ``1`` prints full tracebacks instead of writing them to the crash log only.
OPS_DEBUG = "OPS_DEBUG"
#: Extra folders to search for named profiles, separated by ``os.pathsep``; searched first.
OPS_PROFILE_PATH = "OPS_PROFILE_PATH"
#: Seconds to wait for the Foundry model catalog before treating it as unreachable.
OPS_CATALOG_TIMEOUT = "OPS_CATALOG_TIMEOUT"
#: The Foundry model catalog to use (Foundry's own default when unset); must end in /asset-gallery/v1.0/models.
OPS_CATALOG_URL = "OPS_CATALOG_URL"
#: Debian mirror for bootstrapping the base image (default: the host's apt mirror).
OPS_DEBIAN_MIRROR = "OPS_DEBIAN_MIRROR"
#: Root of what ``ops`` builds once per machine and reuses across stacks: model recipes' outputs,
#: their downloads and the builder's virtual environment. Default: ``$XDG_CACHE_HOME/ops``.
OPS_CACHE = "OPS_CACHE"
#: ``1`` means we run in CI: tests that need a real dependency fail instead of skipping.
OPS_CI = "OPS_CI"

ALL = (
    OPS_HOME,
    OPS_DEBUG,
    OPS_PROFILE_PATH,
    OPS_CATALOG_TIMEOUT,
    OPS_CATALOG_URL,
    OPS_DEBIAN_MIRROR,
    OPS_CACHE,
    OPS_CI,
)

DEFAULT_CATALOG_TIMEOUT = 3.0


@dataclass(frozen=True)
class Settings:
    """The environment part of the settings, read once per command."""

    home: Path
    debug: bool
    profile_path: tuple[Path, ...]
    catalog_timeout: float
    catalog_url: str | None = None
    cache: Path = Path.home() / ".cache" / "ops"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Read the settings from ``env`` (default: the process environment)."""
        env = dict(os.environ if env is None else env)
        return cls(
            home=_home(env),
            debug=env.get(OPS_DEBUG, "") not in ("", "0", "false", "no"),
            profile_path=tuple(Path(p) for p in env.get(OPS_PROFILE_PATH, "").split(os.pathsep) if p),
            catalog_timeout=_float(env.get(OPS_CATALOG_TIMEOUT), DEFAULT_CATALOG_TIMEOUT),
            catalog_url=env.get(OPS_CATALOG_URL) or None,
            cache=_cache(env),
        )


def _home(env: dict[str, str]) -> Path:
    if env.get(OPS_HOME):
        return Path(env[OPS_HOME]).expanduser()
    xdg = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg).expanduser() / "ops"


def _cache(env: dict[str, str]) -> Path:
    if env.get(OPS_CACHE):
        return Path(env[OPS_CACHE]).expanduser()
    xdg = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "ops"


def _float(raw: str | None, default: float) -> float:
    try:
        return float(raw) if raw else default
    except ValueError:
        return default
