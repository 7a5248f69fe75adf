"""Where the host's pip takes wheels from: its ``find-links`` and ``file://`` index folders.

A recipe that needs a wheel the build cannot download (Open WebUI's CPU torch) looks for it here,
so a machine set up for offline pip installs needs nothing more for the image builds.
"""

from __future__ import annotations

import configparser
import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlparse


def pip_wheel_dirs(
    env: dict[str, str] | None = None, config_files: Iterable[Path] | None = None
) -> list[Path]:
    """Local folders the host's pip takes wheels from: ``find-links`` and ``file://`` indexes.

    Read from ``PIP_FIND_LINKS`` / ``PIP_INDEX_URL`` / ``PIP_EXTRA_INDEX_URL`` and from every
    pip configuration file pip itself reads; for an index, its ``torch/`` project folder.
    """
    env = dict(os.environ if env is None else env)
    values = {key: [env.get(f"PIP_{key.upper().replace('-', '_')}", "")] for key in _PIP_KEYS}
    for path in _pip_config_files(env) if config_files is None else config_files:
        parser = configparser.ConfigParser(interpolation=None)
        with contextlib.suppress(configparser.Error, OSError, UnicodeDecodeError):
            parser.read(path, encoding="utf-8")
        for section in ("global", "install", "download"):
            for key in _PIP_KEYS:
                values[key].append(parser.get(section, key, fallback=""))
    found: list[Path] = []
    for key, texts in values.items():
        for location in (item for text in texts for item in text.split()):
            folder = _local_dir(location)
            if folder is not None and key != "find-links":
                folder = folder / "torch"
            if folder is not None and folder.is_dir() and folder not in found:
                found.append(folder)
    return found


_PIP_KEYS = ("find-links", "index-url", "extra-index-url")


def _pip_config_files(env: dict[str, str]) -> list[Path]:
    """pip's configuration files, in pip's own order (site-wide, user, virtualenv, PIP_CONFIG_FILE)."""
    xdg_dirs = env.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs.split(os.pathsep) if d]
    files += [Path("/etc/pip.conf"), Path.home() / ".pip" / "pip.conf"]
    files.append(Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "pip" / "pip.conf")
    if env.get("VIRTUAL_ENV"):
        files.append(Path(env["VIRTUAL_ENV"]) / "pip.conf")
    if env.get("PIP_CONFIG_FILE"):
        files.append(Path(env["PIP_CONFIG_FILE"]))
    return [f for f in files if f.is_file()]


def _local_dir(location: str) -> Path | None:
    """The folder behind a find-links or index entry, or None for a remote URL."""
    if location.startswith("file://"):
        return Path(unquote(urlparse(location).path))
    if "://" in location:
        return None
    return Path(location).expanduser()
