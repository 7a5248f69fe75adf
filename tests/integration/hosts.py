"""Helpers to run real model hosts in tests: a free port, a profile on the bundled tiny models."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from ops import profiles
from ops.host import process
from ops.plan import resolve
from ops.profiles import LoadedProfile
from ops.settings import Settings
from ops.stack import GATEWAY_KEY, prepare_state
from ops.state import StackState


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_profile(
    folder: Path, name: str, port: int, bind: str = "[127.0.0.1]", serve: str | None = None, extra: str = ""
) -> Path:
    """A profile serving both bundled tiny models through a gateway on ``port``.

    ``serve``: their serving path (default: the profile default); ``extra``: more lines under ``models:``.
    """
    path = folder / f"{name}.yaml"
    how = f", serve: {serve}" if serve else ""
    path.write_text(
        f"name: {name}\n"
        "models:\n"
        f"  tiny: {{path: bundled:tiny-fp32{how}}}\n"
        f"  tiny-int4: {{path: bundled:tiny-int4{how}}}\n"
        f"{extra}"
        f"gateway: {{port: {port}, bind: {bind}, default_max_tokens: 16, max_body_bytes: 100000}}\n"
    )
    return path


class RunningHost:
    """A host started through the library, as `ops up` does it."""

    def __init__(
        self,
        home: Path,
        folder: Path,
        name: str,
        bind: str = "[127.0.0.1]",
        serve: str | None = None,
        extra: str = "",
    ):
        self.settings = Settings.from_env({"OPS_HOME": str(home)})
        self.port = free_port()
        self.serve = serve
        self.path = write_profile(folder, name, self.port, bind, serve, extra)
        self.loaded: LoadedProfile = profiles.load_path(self.path)
        self.state: StackState = prepare_state(name, self.settings)
        self.key = self.state.secrets.get(GATEWAY_KEY).reveal()

    def start(self, addresses: list[str] | None = None):
        info, reused = process.start(
            resolve(self.loaded), self.state, addresses or ["127.0.0.1"], timeout=120
        )
        self.info = info
        return info, reused

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> bool:
        return process.stop(self.state)


def module_home(prefix: str):
    """Fixtures for a module whose stack lives in one ``OPS_HOME`` for all its tests.

    Returns ``(home, ops_home)``: assign them at module level. ``home`` is module-scoped and sets
    ``OPS_HOME`` itself (monkeypatch is function-scoped), restoring it after the module's stack is
    gone; ``ops_home`` overrides the autouse per-test home so each test sees the module's.
    """

    @pytest.fixture(scope="module")
    def home(tmp_path_factory):
        path = tmp_path_factory.mktemp(prefix)
        previous = os.environ.get("OPS_HOME")
        os.environ["OPS_HOME"] = str(path)
        yield path
        if previous is None:
            os.environ.pop("OPS_HOME", None)
        else:
            os.environ["OPS_HOME"] = previous

    @pytest.fixture
    def ops_home(home, monkeypatch):
        monkeypatch.setenv("OPS_HOME", str(home))
        return home

    return home, ops_home
