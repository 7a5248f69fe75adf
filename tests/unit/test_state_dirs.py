"""Where ``ops`` keeps its state (the home) and its cache on Linux, macOS and Windows.

Linux keeps the folders ``ops`` always used; macOS and Windows get platformdirs' answers, asked
here of platformdirs' class for that platform (the one ``platformdirs.PlatformDirs`` is there).
"""

from __future__ import annotations

import sys
from pathlib import Path, PureWindowsPath

import platformdirs
import pytest
from platformdirs.macos import MacOS
from platformdirs.unix import Unix
from platformdirs.windows import Windows

from ops import settings
from ops.settings import Settings

XDG = ("XDG_STATE_HOME", "XDG_CACHE_HOME")


@pytest.fixture
def ann(monkeypatch, tmp_path) -> Path:
    """A user whose home is ``<tmp>/ann``, with no OPS_* or XDG_* folder set."""
    home = tmp_path / "ann"
    monkeypatch.setenv("HOME", str(home))
    for name in ("OPS_HOME", "OPS_CACHE", *XDG):
        monkeypatch.delenv(name, raising=False)
    return home


def on(monkeypatch, platform: str, dirs: type) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(settings, "PlatformDirs", dirs)


def test_linux_keeps_the_xdg_folders(ann, monkeypatch):
    on(monkeypatch, "linux", Unix)
    found = Settings.from_env()
    assert found.home == ann / ".local" / "state" / "ops"
    assert found.cache == ann / ".cache" / "ops"
    # what platformdirs itself answers on Linux
    assert found.home == Path(platformdirs.user_state_dir("ops", appauthor=False))
    assert found.cache == Path(platformdirs.user_cache_dir("ops", appauthor=False))


def test_linux_reads_xdg_from_the_environment_it_is_given(ann, monkeypatch, tmp_path):
    on(monkeypatch, "linux", Unix)
    found = Settings.from_env({"XDG_STATE_HOME": str(tmp_path / "s"), "XDG_CACHE_HOME": "~/c"})
    assert found.home == tmp_path / "s" / "ops"
    assert found.cache == ann / "c" / "ops"  # ~ expanded, as before


def test_macos_uses_library(ann, monkeypatch):
    on(monkeypatch, "darwin", MacOS)
    found = Settings.from_env()
    assert found.home == ann / "Library" / "Application Support" / "ops"
    assert found.cache == ann / "Library" / "Caches" / "ops"
    # XDG folders count on macOS too, as platformdirs has it
    assert Settings.from_env({"XDG_STATE_HOME": "/x"}).home == Path("/x/ops")


def test_windows_uses_local_app_data(ann, monkeypatch):
    on(monkeypatch, "win32", Windows)
    # platformdirs' own override of the folder Windows would name
    monkeypatch.setenv("WIN_PD_OVERRIDE_LOCAL_APPDATA", r"C:\Users\ann\AppData\Local")
    found = Settings.from_env({"XDG_STATE_HOME": "/ignored", "XDG_CACHE_HOME": "/ignored"})
    assert PureWindowsPath(found.home) == PureWindowsPath(r"C:\Users\ann\AppData\Local\ops")
    assert PureWindowsPath(found.cache) == PureWindowsPath(r"C:\Users\ann\AppData\Local\ops\Cache")


@pytest.mark.parametrize(("platform", "dirs"), [("linux", Unix), ("darwin", MacOS), ("win32", Windows)])
def test_ops_home_and_ops_cache_win_everywhere(ann, monkeypatch, tmp_path, platform, dirs):
    on(monkeypatch, platform, dirs)
    monkeypatch.setenv("WIN_PD_OVERRIDE_LOCAL_APPDATA", r"C:\Users\ann\AppData\Local")
    found = Settings.from_env({"OPS_HOME": str(tmp_path / "h"), "OPS_CACHE": "~/k"})
    assert (found.home, found.cache) == (tmp_path / "h", ann / "k")
