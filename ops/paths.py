"""Where the files that ship with ``ops`` live: profiles, stack recipes, the bundled models.

In a wheel, ``profiles/`` and ``stacks/`` are copied into ``ops/_shipped/``; in a source
checkout (editable install) they sit beside the ``ops`` package.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
BUNDLED_MODELS = PACKAGE / "models" / "bundled"


def shipped(name: str) -> Path:
    """The shipped folder ``name`` (``profiles`` or ``stacks``)."""
    installed = PACKAGE / "_shipped" / name
    if installed.is_dir():
        return installed
    return PACKAGE.parent / name


def bundled_model(name: str) -> Path:
    """The folder of a model bundled with ``ops`` (``bundled:NAME`` in a profile)."""
    return BUNDLED_MODELS / name


def bundled_model_names() -> list[str]:
    """Names of the bundled models."""
    if not BUNDLED_MODELS.is_dir():
        return []
    return sorted(p.name for p in BUNDLED_MODELS.iterdir() if (p / "genai_config.json").is_file())
