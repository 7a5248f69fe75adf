"""How the CLI talks: tables and colour on a terminal, JSON with ``--json``, errors on stderr.

Everything written here passes through :func:`ops.secrets.redact` first, so a secret that
slipped into a message is masked rather than printed.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

__all__ = ["emit_json", "err", "error", "escape", "line", "note", "out"]

from ops.errors import OpsError
from ops.secrets import Secret, redact

# emoji=False: rich would otherwise turn ``:AB:`` or ``:OK:`` inside a fingerprint, a key or a log
# line into an emoji (a CA fingerprint printed as ``12🆎CD`` is wrong, and was caught by a test).
out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def line(text: str = "", style: str | None = None) -> None:
    """Print one (redacted) line to stdout."""
    out.print(escape(redact(text)), style=style)


def note(text: str, style: str = "yellow") -> None:
    """Print a (redacted) notice to stderr, so it never mixes with ``--json`` output."""
    err.print(escape(redact(text)), style=style)


def error(exc: OpsError) -> None:
    """Print an :class:`OpsError` as one red line plus its hint."""
    err.print(f"[bold red]error:[/] {escape(redact(exc.message))}")
    evidence = getattr(exc, "evidence", None)
    if evidence:
        err.print(f"[dim]last {len(evidence)} log lines:[/]")
        for text in evidence:
            err.print(f"  [dim]{escape(redact(text))}[/]")
    if exc.hint:
        err.print(f"[dim]hint:[/] {escape(redact(exc.hint))}")


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Secret):
        return str(value)
    if callable(getattr(value, "model_dump", None)):  # a profile's pydantic model (ModelPlan.spec)
        return _plain(value.model_dump(mode="json"))
    return value


def emit_json(value: Any) -> None:
    """Write ``value`` (dataclasses, dicts, lists) as JSON on stdout, redacted."""
    sys.stdout.write(redact(json.dumps(_plain(value), indent=2, sort_keys=False)) + "\n")
    sys.stdout.flush()
