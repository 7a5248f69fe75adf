"""A stack of the bundled tiny model and the real Open WebUI for a test module: its profile, up and down."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ops import lifecycle, profiles
from ops.lifecycle import UpReport
from ops.plan import resolve
from ops.profiles import LoadedProfile

SERVICE = "open-webui"


def open_webui_profile(
    folder: Path, stack: str, ui_port: int, gateway: str, extra: str = "", image: str | None = None
) -> Path:
    """A profile: the bundled tiny model as ``tiny``, the gateway (``gateway``: its YAML mapping), Open
    WebUI on 127.0.0.1:``ui_port`` with its data volume (``image``: a built image's tag, pulled as is);
    ``extra``: more top-level lines."""
    pinned = f"    image: {image}\n    image_policy: pull\n" if image else ""
    path = folder / f"{stack}.yaml"
    path.write_text(
        f"name: {stack}\n"
        "models:\n"
        "  tiny: {path: bundled:tiny-fp32}\n"
        f"gateway: {gateway}\n"
        "services:\n"
        f"  {SERVICE}:\n"
        "    kind: open-webui\n"
        f"{pinned}"
        f'    ports: ["127.0.0.1:{ui_port}:8080"]\n'
        '    volumes: ["data:/app/backend/data"]\n'
        '    health: {http: /health, body: "true", timeout: 600}\n'
        "volumes:\n"
        "  data: {}\n"
        f"{extra}"
    )
    return path


@contextmanager
def stack_up(path: Path, fresh: bool = False) -> Iterator[tuple[LoadedProfile, UpReport]]:
    """``ops up`` the profile at ``path`` (``fresh``: after removing what an interrupted run left), and
    down with its volumes however the block ends."""
    loaded = profiles.load_path(path)
    if fresh:
        lifecycle.down(resolve(loaded, ask_catalog=False), remove_volumes=True)
    try:
        yield loaded, lifecycle.up(resolve(loaded))
    finally:
        lifecycle.down(resolve(loaded, ask_catalog=False), remove_volumes=True)
