"""Metering: what each caller used of each model, recorded by the gateway, reported by ``ops usage``.

The gateway hands every finished request to a :class:`Meter` as one :class:`Usage` record, and each
gap between two streamed tokens to :meth:`Meter.inter_token`. :mod:`ops.metering.store` keeps the
records in SQLite in the stack's state folder (they survive a host restart);
:mod:`ops.metering.prometheus` counts them for ``/metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Usage:
    """One request the gateway answered (or refused after knowing who asked)."""

    #: When it arrived (Unix time, seconds).
    at: float
    #: Who asked: ``participant:<name>``, ``user:<email>`` (an Open WebUI user who is no participant),
    #: ``service:<name>`` (a service's key, no user forwarded) or ``admin`` (the stack key).
    caller: str
    #: The participant's name when the caller is one, else None.
    participant: str | None
    #: The model alias asked for (a virtual model's name when routed).
    model: str
    #: The HTTP status answered (429 for over quota or a full queue, 499 when the client left).
    status: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: Seconds from arrival to the first answer byte with content (None when no content came).
    ttft: float | None = None
    #: Seconds from arrival to the end of the answer.
    duration: float = 0.0
    #: Seconds it waited in the gateway's queue for a slot.
    queued: float = 0.0
    #: ``chat`` or ``embeddings``.
    task: str = "chat"


class Meter(Protocol):
    """Where the gateway sends what it measured; implementations must not block for long."""

    def record(self, usage: Usage) -> None:
        """One finished request."""

    def inter_token(self, model: str, seconds: float) -> None:
        """The gap between two streamed chunks with content of one answer of ``model``."""

    def queue_depth(self, model: str, waiting: int) -> None:
        """How many requests for ``model`` wait in the gateway's queue now."""

    def tokens_since(self, since: float) -> dict[str, list[tuple[float, int]]]:
        """Per caller, ``(at, prompt + completion tokens)`` of each request since ``since``: the
        quota windows a restarted host starts from."""
        ...


class NullMeter:
    """Measures nothing (a gateway with no state folder, e.g. in unit tests)."""

    def record(self, usage: Usage) -> None:
        """Drop it."""

    def inter_token(self, model: str, seconds: float) -> None:
        """Drop it."""

    def queue_depth(self, model: str, waiting: int) -> None:
        """Drop it."""

    def tokens_since(self, since: float) -> dict[str, list[tuple[float, int]]]:
        """Nothing was recorded."""
        return {}
