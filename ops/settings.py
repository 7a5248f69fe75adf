r"""Every ``OPS_*`` environment setting, in one place.

Precedence everywhere is: CLI flag > profile > ``OPS_*`` environment > default.
This module only answers the environment and default part.

The default folders are the platform's, as ``platformdirs`` knows them:

======== ====================================== ==========================================
system   home (state)                           cache
======== ====================================== ==========================================
Linux    ``$XDG_STATE_HOME/ops``                ``$XDG_CACHE_HOME/ops``
         (``~/.local/state/ops``)               (``~/.cache/ops``)
macOS    ``~/Library/Application Support/ops``  ``~/Library/Caches/ops``
Windows  ``%LOCALAPPDATA%\ops``                 ``%LOCALAPPDATA%\ops\Cache``
======== ====================================== ==========================================

``$XDG_STATE_HOME`` and ``$XDG_CACHE_HOME`` count on macOS too (as platformdirs has it), never on
Windows; ``OPS_HOME`` and ``OPS_CACHE`` win everywhere.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from platformdirs import PlatformDirs

#: The folder name under the platform's state and cache folders.
APP = "ops"

#: Root of all state (per-stack folders, secrets, logs). Default: the platform's (see above).
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
#: their downloads and the builder's virtual environment. Default: the platform's (see above).
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
    cache: Path = field(default_factory=lambda: _cache(dict(os.environ)))

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
    return _xdg(env, "XDG_STATE_HOME") or _platform_dirs().user_state_path


def _cache(env: dict[str, str]) -> Path:
    if env.get(OPS_CACHE):
        return Path(env[OPS_CACHE]).expanduser()
    return _xdg(env, "XDG_CACHE_HOME") or _platform_dirs().user_cache_path


def _xdg(env: dict[str, str], name: str) -> Path | None:
    """``$<name>/ops`` when ``env`` sets ``name`` (Linux, macOS), else None.

    Read from ``env`` (platformdirs reads ``os.environ`` only) and with ``~`` expanded, as before.
    """
    if sys.platform != "win32" and env.get(name):
        return Path(env[name]).expanduser() / APP
    return None


def _platform_dirs() -> PlatformDirs:
    # appauthor=False: no company folder on Windows (%LOCALAPPDATA%\ops, not ...\ops\ops).
    return PlatformDirs(APP, appauthor=False)


def _float(raw: str | None, default: float) -> float:
    try:
        return float(raw) if raw else default
    except ValueError:
        return default
