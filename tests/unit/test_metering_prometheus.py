"""The gateway's /metrics: Prometheus' text format from a registry of its own, and the meter that feeds it."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from ops.metering.meter import GatewayMeter
from ops.metering.prometheus import MAX_MODELS, GatewayMetrics
from ops.state import StackState

from .usagefakes import usage as make_usage


def usage(**fields):
    return make_usage(**{"at": 1.0, "ttft": 0.3, **fields})


def samples(metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=")
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_counters_gauge_and_histograms_in_the_text_format():
    metrics = GatewayMetrics()
    metrics.record(usage())
    metrics.record(usage(prompt=20, completion=7, ttft=1.5))
    metrics.record(usage(status=429, prompt=0, completion=0, ttft=None))
    metrics.record(usage(model="big", status=500, caller="admin", prompt=0, completion=0, ttft=None))
    metrics.inter_token("tiny", 0.012)
    metrics.inter_token("tiny", 0.03)
    metrics.queue_depth("tiny", 4)
    found = samples(metrics)
    assert found[("ops_gateway_requests_total", (("model", "tiny"), ("status", "200")))] == 2
    assert found[("ops_gateway_requests_total", (("model", "tiny"), ("status", "429")))] == 1
    assert found[("ops_gateway_requests_total", (("model", "big"), ("status", "500")))] == 1
    assert found[("ops_gateway_tokens_total", (("kind", "prompt"), ("model", "tiny")))] == 30
    assert found[("ops_gateway_tokens_total", (("kind", "completion"), ("model", "tiny")))] == 12
    assert found[("ops_gateway_errors_total", (("code", "429"), ("model", "tiny")))] == 1
    assert found[("ops_gateway_errors_total", (("code", "500"), ("model", "big")))] == 1
    assert ("ops_gateway_errors_total", (("code", "200"), ("model", "tiny"))) not in found
    assert found[("ops_gateway_queue_waiting", (("model", "tiny"),))] == 4
    assert found[("ops_gateway_ttft_seconds_count", (("model", "tiny"),))] == 2
    assert found[("ops_gateway_ttft_seconds_sum", (("model", "tiny"),))] == pytest.approx(1.8)
    assert found[("ops_gateway_ttft_seconds_bucket", (("le", "0.5"), ("model", "tiny")))] == 1
    assert found[("ops_gateway_ttft_seconds_bucket", (("le", "+Inf"), ("model", "tiny")))] == 2
    assert found[("ops_gateway_inter_token_seconds_count", (("model", "tiny"),))] == 2
    assert found[("ops_gateway_inter_token_seconds_bucket", (("le", "0.02"), ("model", "tiny")))] == 1
    # Per participant: participants only (the admin's request above has none).
    assert (
        found[("ops_gateway_participant_requests_total", (("participant", "ann"), ("status_class", "2xx")))]
        == 2
    )
    assert (
        found[("ops_gateway_participant_requests_total", (("participant", "ann"), ("status_class", "4xx")))]
        == 1
    )
    assert found[("ops_gateway_participant_tokens_total", (("kind", "prompt"), ("participant", "ann")))] == 30
    assert not any(labels and dict(labels).get("participant") == "admin" for _, labels in found)


def test_each_gateway_has_its_own_registry_not_the_global_one():
    first, second = GatewayMetrics(), GatewayMetrics()  # the same names twice: no clash
    first.record(usage())
    assert samples(second).get(("ops_gateway_requests_total", (("model", "tiny"), ("status", "200")))) is None
    assert REGISTRY.get_sample_value("ops_gateway_requests_total", {"model": "tiny", "status": "200"}) is None


def test_label_values_are_bounded():
    known = GatewayMetrics(models=["tiny"], participants=["ann"])
    known.record(usage(model="made-up", caller="participant:eve"))
    found = samples(known)
    assert found[("ops_gateway_requests_total", (("model", "other"), ("status", "200")))] == 1
    assert (
        found[("ops_gateway_participant_requests_total", (("participant", "other"), ("status_class", "2xx")))]
        == 1
    )
    unknown = GatewayMetrics()
    for i in range(MAX_MODELS + 5):
        unknown.record(usage(model=f"m{i}"))
    models = {
        dict(labels)["model"] for name, labels in samples(unknown) if name == "ops_gateway_requests_total"
    }
    assert len(models) == MAX_MODELS + 1 and "other" in models


def test_the_gateway_meter_fans_out_to_the_store_and_the_metrics():
    meter = GatewayMeter(StackState.for_stack("fanout"))
    try:
        meter.record(usage())
        meter.inter_token("tiny", 0.01)
        meter.queue_depth("tiny", 2)
        assert meter.tokens_since(0) == {"participant:ann": [(1.0, 15)]}
        found = samples(meter)
        assert found[("ops_gateway_requests_total", (("model", "tiny"), ("status", "200")))] == 1
        assert found[("ops_gateway_queue_waiting", (("model", "tiny"),))] == 2
    finally:
        meter.close()
    assert StackState.for_stack("fanout").usage_db.is_file()


def test_a_scraper_that_asks_for_openmetrics_gets_it_and_others_the_classic_text_format():
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics

    metrics = GatewayMetrics()
    metrics.record(usage())
    body, content_type = metrics.render()
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    body, content_type = metrics.render("application/openmetrics-text; version=1.0.0,text/plain;q=0.5")
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith(b"# EOF\n")
    families = {f.name: f for f in openmetrics(body.decode())}
    assert families["ops_gateway_requests"].samples[0].value == 1
