"""The usage report: per caller and per model, requests, errors, tokens, time to first token and cost.

Built from a :class:`~ops.metering.store.UsageStore` and the profile's prices (``price:`` of a model)
at report time, so a price set later applies to what was used before. A model without a price (every
model this machine serves, a routed virtual model) costs nothing that can be said: its cost is None.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from ops.errors import UsageError
from ops.metering.store import Group, UsageStore
from ops.profiles.classroom import PriceSpec

#: ``--by`` values: the report's name for a grouping -> the store's.
BY = {"participant": "caller", "model": "model"}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
#: Widths the timeline's buckets may have (seconds); the smallest that makes at most ``_BUCKETS``.
_WIDTHS = (
    1,
    5,
    10,
    15,
    30,
    60,
    300,
    900,
    1800,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86400,
    7 * 86400,
    30 * 86400,
)
_BUCKETS = 48
NO_COST = "—"


@dataclass(frozen=True)
class Row:
    """The totals of one caller or one model (or of everything, named ``total``)."""

    name: str
    requests: int
    #: Answers with status 400 or more, except 429.
    errors: int
    #: Answers 429: over quota or the queue full.
    refused: int
    prompt_tokens: int
    completion_tokens: int
    #: Time to first token, median and 95th percentile (nearest rank), milliseconds; None without any.
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    #: Currency -> what the priced models' tokens cost; None when no priced model was used.
    cost: dict[str, float] | None


@dataclass(frozen=True)
class Bucket:
    """Requests that arrived in ``[start, start + width)`` of the timeline."""

    start: float
    requests: int
    #: Answers with status 400 or more (429 included).
    failed: int


@dataclass(frozen=True)
class UsageReport:
    """What a stack's gateway served in a time range, ready to render."""

    stack: str
    path: str
    #: The range: arrivals at or after ``since`` (None: since the first) and before ``until``.
    since: float | None
    until: float
    total: Row
    #: Per caller (``participant:<name>``, ``user:<email>``, ``service:<name>``, ``admin``); empty
    #: when not asked for.
    callers: tuple[Row, ...]
    models: tuple[Row, ...]
    #: Seconds each bucket of :attr:`timeline` spans.
    width: float
    timeline: tuple[Bucket, ...]


def parse_since(text: str, now: float | None = None) -> float:
    """``1h``, ``30m``, ``2d``, ``1w`` (that long ago) or an ISO date/time (local time unless it names
    a zone) -> Unix time."""
    now = time.time() if now is None else now
    value = text.strip()
    ago = _AGO.match(value)
    if ago:
        return now - float(ago.group(1)) * _UNITS[ago.group(2)]
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--since {text!r} is neither a duration nor a date",
            hint="give a duration (90s, 30m, 1h, 2d, 1w) or a date and time (2026-12-01T10:00)",
        ) from None
    at = moment.astimezone().timestamp() if moment.tzinfo is None else moment.timestamp()
    if at > now:
        raise UsageError(
            f"--since {text!r} is in the future", hint="give a time in the past, e.g. --since 1h"
        )
    return at


def percentile(values: list[float], p: float) -> float | None:
    """The ``p``-th percentile (nearest rank) of sorted ``values``; None when empty."""
    if not values:
        return None
    return values[max(0, math.ceil(p / 100 * len(values)) - 1)]


def cost_of(group: Group, prices: Mapping[str, PriceSpec]) -> dict[str, float] | None:
    """What ``group``'s tokens cost at its model's price; None when the model has none."""
    price = prices.get(group.model)
    if price is None:
        return None
    amount = group.prompt_tokens / 1e6 * price.input + group.completion_tokens / 1e6 * price.output
    return {price.currency: amount}


def format_cost(cost: dict[str, float] | None) -> str:
    """``0.0123 USD`` (one amount per currency), or ``—`` when nothing priced was used."""
    if cost is None:
        return NO_COST
    return " + ".join(f"{_amount(amount)} {currency}" for currency, amount in sorted(cost.items()))


def _amount(amount: float) -> str:
    """Cents from 1 on, else enough places for a few tokens' worth; nothing priced used: 0.00."""
    if amount == 0 or amount >= 1:
        return f"{amount:.2f}"
    if amount < 0.0000005:
        return "<0.000001"
    return f"{amount:.4f}" if amount >= 0.01 else f"{amount:.6f}"


def build(
    store: UsageStore,
    stack: str,
    prices: Mapping[str, PriceSpec],
    since: float | None = None,
    until: float | None = None,
    by: Iterable[str] = ("participant", "model"),
) -> UsageReport:
    """The report of ``store`` over ``[since, until)`` (until: now), grouped as ``by`` asks."""
    until = time.time() if until is None else until
    wanted = set(by)
    models = _rows(store, "model", prices, since, until)
    callers = _rows(store, "caller", prices, since, until) if "participant" in wanted else ()
    everything = _total(store, models, since, until)
    width, timeline = _timeline(store, since, until) if everything.requests else (60.0, ())
    return UsageReport(
        stack=stack,
        path=str(store.path),
        since=since,
        until=until,
        total=everything,
        callers=callers,
        models=models if "model" in wanted else (),
        width=width,
        timeline=timeline,
    )


def _rows(
    store: UsageStore, by: str, prices: Mapping[str, PriceSpec], since: float | None, until: float
) -> tuple[Row, ...]:
    groups: dict[str, list[Group]] = {}
    for group in store.groups(by, since, until):
        groups.setdefault(group.key, []).append(group)
    ttfts = store.ttfts(by, since, until)
    return tuple(_row(name, parts, prices, ttfts.get(name, [])) for name, parts in groups.items())


def _row(name: str, parts: list[Group], prices: Mapping[str, PriceSpec], ttfts: list[float]) -> Row:
    return _summed(name, parts, [cost_of(part, prices) for part in parts], ttfts)


def _total(store: UsageStore, models: tuple[Row, ...], since: float | None, until: float) -> Row:
    ttfts = sorted(t for values in store.ttfts("model", since, until).values() for t in values)
    return _summed("total", models, [row.cost or None for row in models], ttfts)


def _summed(
    name: str, parts: Sequence[Group | Row], costs: Iterable[dict[str, float] | None], ttfts: list[float]
) -> Row:
    """One row adding up ``parts``' counts and ``costs`` per currency (None: nothing priced)."""
    cost: dict[str, float] | None = None
    for priced in costs:
        if priced is not None:
            cost = cost or {}
            for currency, amount in priced.items():
                cost[currency] = cost.get(currency, 0.0) + amount
    p50, p95 = percentile(ttfts, 50), percentile(ttfts, 95)
    return Row(
        name=name,
        requests=sum(p.requests for p in parts),
        errors=sum(p.errors for p in parts),
        refused=sum(p.refused for p in parts),
        prompt_tokens=sum(p.prompt_tokens for p in parts),
        completion_tokens=sum(p.completion_tokens for p in parts),
        ttft_p50_ms=_ms(p50),
        ttft_p95_ms=_ms(p95),
        cost=_rounded(cost),
    )


def _timeline(store: UsageStore, since: float | None, until: float) -> tuple[float, tuple[Bucket, ...]]:
    """Requests per bucket from the range's start to its end, empty buckets included."""
    span = store.span()
    if span is None:
        return 60.0, ()
    first = since if since is not None else span[0]
    last = min(until, span[1] + 1)
    width = next((w for w in _WIDTHS if (last - first) / w <= _BUCKETS), _WIDTHS[-1])
    start = math.floor(first / width) * width  # buckets on whole minutes, hours, days (UTC)
    counts = {b: (n, f) for b, n, f in store.timeline(start, width, since, until)}
    buckets = max(1, math.ceil((last - start) / width))
    return float(width), tuple(Bucket(start + i * width, *counts.get(i, (0, 0))) for i in range(buckets))


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _rounded(cost: dict[str, float] | None) -> dict[str, float] | None:
    """Amounts to 10 places: no float noise (8.400000000000001e-06) in --json."""
    return None if cost is None else {currency: round(amount, 10) for currency, amount in cost.items()}
