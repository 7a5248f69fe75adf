"""The gateway's meter: each measurement to the usage store (kept) and to the Prometheus metrics (live)."""

from __future__ import annotations

from collections.abc import Iterable

from ops.metering import Usage
from ops.metering.prometheus import GatewayMetrics
from ops.metering.store import open_or_set_aside
from ops.state import StackState


class GatewayMeter:
    """A :class:`~ops.metering.Meter` for a stack's gateway: :attr:`store` in the stack's state folder
    plus :attr:`metrics` for ``/metrics``; one per host process, closed when the host stops.

    ``models`` and ``participants`` bound the Prometheus labels (see
    :class:`~ops.metering.prometheus.GatewayMetrics`): pass the served and virtual models' names.
    """

    def __init__(
        self,
        state: StackState,
        models: Iterable[str] | None = None,
        participants: Iterable[str] | None = None,
    ):
        self.store = open_or_set_aside(state.ensure().usage_db)
        self.metrics = GatewayMetrics(models, participants)

    def record(self, usage: Usage) -> None:
        """Queue it for the store (returns at once) and count it."""
        self.store.record(usage)
        self.metrics.record(usage)

    def inter_token(self, model: str, seconds: float) -> None:
        """Into the inter-token histogram."""
        self.metrics.inter_token(model, seconds)

    def queue_depth(self, model: str, waiting: int) -> None:
        """Into the queue gauge."""
        self.metrics.queue_depth(model, waiting)

    def tokens_since(self, since: float) -> dict[str, list[tuple[float, int]]]:
        """From the store: what a restarted host's quota windows start from."""
        return self.store.tokens_since(since)

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """``/metrics``' body and content type (``accept``: the request's ``Accept`` header)."""
        return self.metrics.render(accept)

    def close(self) -> None:
        """Write what is queued and close the store."""
        self.store.close()
