"""The classroom benchmark's figures: Jain's index, busy time, service rates, goodput, one run's figures."""

from __future__ import annotations

import pytest

from ops.bench.chat import Sample
from ops.bench.classroom import GREEDY, ClassroomBench, Request, figures
from ops.bench.fairness import busy_time, goodput, jain, service_rate

pytestmark = pytest.mark.unit


def test_jain_is_one_when_equal_and_one_over_n_when_one_takes_all():
    assert jain([3.0, 3.0, 3.0]) == pytest.approx(1.0)
    assert jain([5.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)
    assert jain([]) == 1.0


def test_jain_of_a_greedy_participant_among_29():
    # The module's own worked example: 8 streams beside 29 single ones, then held to 2.
    assert jain([1.0] * 29 + [8.0]) == pytest.approx(0.49, abs=0.01)
    assert jain([1.0] * 29 + [2.0]) == pytest.approx(0.97, abs=0.01)


def test_busy_time_is_the_union_of_overlapping_requests():
    assert busy_time([(0, 2), (1, 3), (5, 6)]) == pytest.approx(4.0)
    assert busy_time([(0, 10), (2, 3)]) == pytest.approx(10.0)
    assert busy_time([]) == 0.0


def test_service_rate_counts_tokens_over_busy_time_only():
    assert service_rate([(0, 2), (10, 12)], 40) == pytest.approx(10.0)  # think time is not counted
    assert service_rate([], 0) == 0.0


def test_goodput_counts_failures_as_misses():
    assert goodput([0.5, 1.5, 2.5, None], 2.0) == pytest.approx(0.5)
    assert goodput([], 2.0) == 0.0


def _ok(ttft: float, e2e: float, tokens: int) -> Sample:
    return Sample(True, ttft_s=ttft, e2e_s=e2e, token_times_s=tuple(ttft + i * 0.01 for i in range(tokens)))


def test_figures_of_a_run_with_a_greedy_participant():
    requests = [
        Request("p01", 0.0, _ok(0.2, 1.0, 10)),
        Request("p02", 0.5, _ok(0.4, 1.0, 10)),
        Request("p02", 5.0, Sample(False, "HTTP 429 queue_full", e2e_s=0.01)),
        Request(GREEDY, 0.0, _ok(0.1, 1.0, 10)),
        Request(GREEDY, 0.0, _ok(0.3, 1.0, 10)),
    ]
    run = figures("fair", True, requests, 10.0, 0.3, ["p01", "p02", "p03"])
    assert run.requests == 5 and run.failed == 1 and run.refused == 1
    assert run.others_ttft_p95_ms == pytest.approx(390.0)
    assert run.goodput == pytest.approx(1 / 3)  # p01 in time; p02's first late, its second refused
    assert run.unserved == ["p03"]
    assert run.greedy_share == pytest.approx(0.5)
    assert run.tokens_per_s == pytest.approx(4.0)
    # p01: 10 tokens in its 1 s open; p02: 10 in 1.01 s (its refusal was open 0.01 s); the greedy
    # one: 20 tokens over the one second its two requests were open together.
    assert run.fairness == pytest.approx(jain([10.0, 10 / 1.01, 20.0]))


def test_rise_compares_the_others_p95_with_and_without_the_greedy_one():
    calm = figures("fair", False, [Request("p01", 0, _ok(1.0, 2.0, 5))], 10, 2, ["p01"])
    busy = figures("fair", True, [Request("p01", 0, _ok(1.2, 2.0, 5))], 10, 2, ["p01"])
    bench = ClassroomBench("m", 2, 10, 1, 5, 8, 2, [calm, busy])
    assert bench.rise("fair") == pytest.approx(0.2)
