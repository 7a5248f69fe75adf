"""The usage report: --since, percentiles, cost from the profile's prices, the timeline, the HTML file."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ops.errors import UsageError
from ops.metering import Usage, html, report
from ops.metering.store import UsageStore
from ops.profiles.classroom import PriceSpec

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "ago"),
    [("90s", 90), ("30m", 1800), ("1h", 3600), ("2d", 172800), ("1w", 604800), ("1.5h", 5400)],
)
def test_since_takes_durations(text, ago):
    assert report.parse_since(text, now=NOW) == NOW - ago


def test_since_takes_dates_local_unless_zoned():
    assert (
        report.parse_since("2026-12-01T10:00+00:00", now=NOW)
        == datetime(2026, 12, 1, 10, tzinfo=UTC).timestamp()
    )
    assert (
        report.parse_since("2026-12-01T10:00", now=NOW) == datetime(2026, 12, 1, 10).astimezone().timestamp()
    )
    assert report.parse_since("2026-12-01", now=NOW) == datetime(2026, 12, 1).astimezone().timestamp()


@pytest.mark.parametrize("text", ["yesterday", "1 h", "-1h", "1y", "", "2026-13-01"])
def test_since_refuses_garbage_with_a_hint(text):
    with pytest.raises(UsageError, match="neither a duration nor a date") as caught:
        report.parse_since(text, now=NOW)
    assert "30m, 1h" in caught.value.hint


def test_since_refuses_the_future():
    with pytest.raises(UsageError, match="in the future"):
        report.parse_since("2100-01-01", now=NOW)


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert report.percentile(values, 50) == 50 and report.percentile(values, 95) == 95
    assert report.percentile([7.0], 95) == 7.0 and report.percentile([], 50) is None


@pytest.fixture
def store(tmp_path):
    with UsageStore(tmp_path / "usage.sqlite") as s:
        for i in range(20):  # ann: 20 on the priced cloud model, TTFT 0.1 .. 2.0 s
            s.record(
                Usage(NOW + i * 60, "participant:ann", "ann", "cloud", 200, 1000, 500, ttft=0.1 * (i + 1))
            )
        for i in range(10):  # bob: 10 on the local model, 2 refused, 1 failed
            status = 429 if i < 2 else 500 if i == 2 else 200
            tokens = (0, 0) if status != 200 else (200, 100)
            s.record(
                Usage(
                    NOW + i * 60,
                    "participant:bob",
                    "bob",
                    "local",
                    status,
                    *tokens,
                    ttft=0.5 if status == 200 else None,
                )
            )
        s.record(Usage(NOW + 3000, "service:open-webui", None, "local", 200, 10, 10, ttft=0.2))
        s.flush()
        yield s


PRICES = {"cloud": PriceSpec(input=2.0, output=8.0, currency="USD")}


def test_rows_per_caller_and_model_with_cost_only_for_priced_models(store):
    result = report.build(store, "room", PRICES, until=NOW + 3600)
    callers = {r.name: r for r in result.callers}
    ann, bob = callers["participant:ann"], callers["participant:bob"]
    assert (ann.requests, ann.errors, ann.refused, ann.prompt_tokens, ann.completion_tokens) == (
        20,
        0,
        0,
        20000,
        10000,
    )
    assert ann.ttft_p50_ms == pytest.approx(1000) and ann.ttft_p95_ms == pytest.approx(1900)
    assert ann.cost == {"USD": pytest.approx(20000 / 1e6 * 2 + 10000 / 1e6 * 8)}  # 0.12
    assert (bob.requests, bob.errors, bob.refused, bob.prompt_tokens) == (10, 1, 2, 1400)
    assert bob.cost is None and report.format_cost(bob.cost) == "—"
    models = {r.name: r for r in result.models}
    assert models["local"].requests == 11 and models["cloud"].cost == ann.cost
    assert result.total.requests == 31 and result.total.cost == ann.cost
    assert report.format_cost(result.total.cost) == "0.1200 USD"


def test_since_narrows_every_figure(store):
    result = report.build(store, "room", PRICES, since=NOW + 600, until=NOW + 3600)
    assert {r.name: r.requests for r in result.callers} == {"participant:ann": 10, "service:open-webui": 1}
    assert sum(b.requests for b in result.timeline) == 11


def test_by_model_only(store):
    result = report.build(store, "room", PRICES, until=NOW + 3600, by=("model",))
    assert result.callers == () and {r.name for r in result.models} == {"cloud", "local"}


def test_timeline_covers_the_range_with_empty_buckets(store):
    result = report.build(store, "room", PRICES, until=NOW + 3600)
    assert result.width == 300  # 50 minutes of requests: 5-minute buckets
    assert sum(b.requests for b in result.timeline) == 31
    assert sum(b.failed for b in result.timeline) == 3
    starts = [b.start for b in result.timeline]
    assert starts == sorted(starts) and all(b - a == 300 for a, b in zip(starts, starts[1:], strict=False))
    assert any(b.requests == 0 for b in result.timeline)  # the quiet half hour before open-webui's request


def test_html_report_is_self_contained_with_both_charts(store):
    page = html.render(report.build(store, "room", PRICES, until=NOW + 3600))
    assert page.count("<svg") == 2
    assert "participant:ann" in page and "0.1200 USD" in page and "—" in page
    assert "src=" not in page and 'href="http' not in page and "<script" not in page  # nothing fetched


def test_cost_shows_cents_or_enough_places_for_a_few_tokens():
    assert report.format_cost({"USD": 12.345}) == "12.35 USD"
    assert report.format_cost({"USD": 0.12}) == "0.1200 USD"
    assert report.format_cost({"USD": 0.0000336}) == "0.000034 USD"
    assert report.format_cost({"USD": 1.5, "EUR": 0.5}) == "0.5000 EUR + 1.50 USD"
    assert report.format_cost(None) == "—"


def test_a_short_session_gets_buckets_of_seconds(tmp_path):
    with UsageStore(tmp_path / "usage.sqlite") as s:
        for i in range(20):
            s.record(Usage(NOW + i, "admin", None, "tiny", 200))
        s.flush()
        result = report.build(s, "room", {}, until=NOW + 30)
    assert result.width == 1 and sum(b.requests for b in result.timeline) == 20


def test_cost_edges():
    assert report.format_cost({"USD": 0.0}) == "0.00 USD"  # a priced model, only refused requests
    assert report.format_cost({"USD": 0.0000003}) == "<0.000001 USD"
