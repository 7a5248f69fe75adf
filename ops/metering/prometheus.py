"""The gateway's Prometheus metrics, in a registry of its own (never the process-wide default one).

Per model: requests by status, tokens by kind, errors by status code, the requests waiting in the
gateway's queue, and histograms of the time to first token and of the gap between streamed tokens.
Per participant (the roster's names only, so the label's values stay few): requests and tokens.
Counters start from zero when the host starts, as Prometheus expects (``rate()`` sees the reset);
the totals that survive a restart are in the usage store.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from functools import partial

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

from ops.metering import Usage

NAMESPACE = "ops_gateway"
#: Seconds; a small model on a CPU answers its first token in 50 ms to a few seconds, a busy room's
#: queue can make it tens of seconds.
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0)
INTER_TOKEN_BUCKETS = (0.005, 0.01, 0.02, 0.04, 0.08, 0.15, 0.3, 0.6, 1.2, 2.5, 5.0)
#: Label values beyond these many distinct ones are counted as ``other`` (a client naming a
#: thousand made-up models must not make a thousand series).
MAX_MODELS = 64
MAX_PARTICIPANTS = 1000
OTHER = "other"


class _Bounded:
    """Label values as given while they are known or few; ``other`` beyond."""

    def __init__(self, known: Iterable[str] | None, limit: int):
        self._known = set(known) if known is not None else None
        self._seen: set[str] = set()
        self._limit = limit
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if self._known is not None:
            return value if value in self._known else OTHER
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) >= self._limit:
                return OTHER
            self._seen.add(value)
            return value


class GatewayMetrics:
    """A :class:`~ops.metering.Meter` that counts for ``/metrics``; :meth:`render` writes the text format.

    ``models`` and ``participants``, when given, are the only label values used (others count as
    ``other``); without them the first :data:`MAX_MODELS` / :data:`MAX_PARTICIPANTS` seen are.
    """

    def __init__(self, models: Iterable[str] | None = None, participants: Iterable[str] | None = None):
        self.registry = CollectorRegistry(auto_describe=True)
        self._model = _Bounded(models, MAX_MODELS)
        self._participant = _Bounded(participants, MAX_PARTICIPANTS)
        counter = partial(Counter, namespace=NAMESPACE, registry=self.registry)
        gauge = partial(Gauge, namespace=NAMESPACE, registry=self.registry)
        histogram = partial(Histogram, namespace=NAMESPACE, registry=self.registry)
        self.requests = counter(
            "requests", "Requests answered, by model and HTTP status", ["model", "status"]
        )
        self.tokens = counter(
            "tokens", "Tokens of answered requests (kind: prompt or completion)", ["model", "kind"]
        )
        self.errors = counter(
            "errors",
            "Requests answered with an HTTP status of 400 or more, by status code (429: over quota or queue full)",
            ["model", "code"],
        )
        self.waiting = gauge("queue_waiting", "Requests waiting in the gateway's queue for a slot", ["model"])
        self.ttft = histogram(
            "ttft_seconds",
            "Seconds from a request's arrival to its first token",
            ["model"],
            buckets=TTFT_BUCKETS,
        )
        self.inter_token_seconds = histogram(
            "inter_token_seconds",
            "Seconds between two streamed chunks with content of one answer",
            ["model"],
            buckets=INTER_TOKEN_BUCKETS,
        )
        self.participant_requests = counter(
            "participant_requests",
            "Requests of each workshop participant, by HTTP status class (2xx, 4xx, 5xx)",
            ["participant", "status_class"],
        )
        self.participant_tokens = counter(
            "participant_tokens",
            "Tokens of each workshop participant's answered requests (kind: prompt or completion)",
            ["participant", "kind"],
        )

    # --- Meter ---------------------------------------------------------------------------------

    def record(self, usage: Usage) -> None:
        """Count one finished request."""
        model = self._model(usage.model)
        self.requests.labels(model, str(usage.status)).inc()
        if usage.status >= 400:
            self.errors.labels(model, str(usage.status)).inc()
        _count_tokens(self.tokens, model, usage)
        if usage.ttft is not None:
            self.ttft.labels(model).observe(usage.ttft)
        if usage.participant is not None:
            who = self._participant(usage.participant)
            self.participant_requests.labels(who, f"{usage.status // 100}xx").inc()
            _count_tokens(self.participant_tokens, who, usage)

    def inter_token(self, model: str, seconds: float) -> None:
        """Observe one gap between streamed chunks."""
        self.inter_token_seconds.labels(self._model(model)).observe(seconds)

    def queue_depth(self, model: str, waiting: int) -> None:
        """Set how many requests for ``model`` wait now."""
        self.waiting.labels(self._model(model)).set(waiting)

    def tokens_since(self, since: float) -> dict[str, list[tuple[float, int]]]:
        """Nothing: the counters keep no times (the usage store answers this)."""
        return {}

    # --- /metrics ------------------------------------------------------------------------------

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The metrics and the content type to answer with: the format the request's ``Accept`` header
        asks for (OpenMetrics when a scraper prefers it), else Prometheus' text format 0.0.4."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


def _count_tokens(counter: Counter, label: str, usage: Usage) -> None:
    """Add a request's prompt and completion tokens to ``counter``'s (label, kind) series."""
    for kind, tokens in (("prompt", usage.prompt_tokens), ("completion", usage.completion_tokens)):
        if tokens:
            counter.labels(label, kind).inc(tokens)
