"""``ops bench`` against a real model host serving the bundled tiny models, and against the stub."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ops.cli import main

from .hosts import RunningHost

METRICS = ("ttft_ms", "itl_ms", "tpot_ms", "e2e_ms")


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    # tiny on the default path (batching), and the same model on Foundry's web service.
    foundry = "  tiny-foundry: {path: bundled:tiny-fp32, serve: foundry}\n"
    home, folder = tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("profiles")
    running = RunningHost(home, folder, "loadgen", extra=foundry)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def bench(host, monkeypatch, capsys):
    """Run ``ops bench`` as the user would, with the host's state folder as OPS_HOME."""
    monkeypatch.setenv("OPS_HOME", str(host.settings.home))

    def run(*args: str) -> tuple[int, dict, str]:
        code = main(["bench", *args, "--json"])
        captured = capsys.readouterr()
        return code, json.loads(captured.out), captured.err

    return run


@pytest.mark.parametrize("model", ["tiny", "tiny-foundry"])
def test_a_good_run_has_every_metric_in_order_and_tokens_match_usage(host, bench, tmp_path, model):
    out = tmp_path / "load.json"
    code, report, err = bench(
        str(host.path),
        "--model",
        model,
        "--concurrency",
        "1,2",
        "--requests",
        "6",
        "--max-tokens",
        "12",
        "--out",
        str(out),
    )
    assert code == 0, err
    assert json.loads(out.read_text()) == report
    assert f"results saved to {out}" in err
    assert report["model"] == model and report["stack"] == "loadgen" and report["usage_source"] == "stream"
    assert [level["concurrency"] for level in report["levels"]] == [1, 2]
    for level in report["levels"]:
        assert (level["requests"], level["succeeded"], level["error_rate"]) == (6, 6, 0.0)
        assert level["warmup_requests"] == level["concurrency"]
        assert level["tokens_counted"] == level["tokens_usage"] == level["output_tokens"] > 0
        assert level["requests_per_s"] > 0 and level["output_tokens_per_s"] > level["requests_per_s"]
        for metric in METRICS:
            dist = level[metric]
            assert 0 <= dist["p50"] <= dist["p90"] <= dist["p95"] <= dist["p99"], (metric, dist)
        assert level["ttft_ms"]["p50"] > 0 and level["ttft_ms"]["count"] == 6
        assert level["ttft_ms"]["p50"] <= level["e2e_ms"]["p50"]
        assert level["itl_ms"]["count"] == level["tokens_counted"] - 6


def test_both_serving_paths_side_by_side_in_one_run(host, bench, tmp_path):
    code, result, err = bench(
        str(host.path),
        "--model",
        "tiny,tiny-foundry",
        "--concurrency",
        "1,2",
        "--requests",
        "4",
        "--max-tokens",
        "8",
        "--out",
        str(tmp_path / "side.json"),
    )
    assert code == 0, err
    assert [r["model"] for r in result["reports"]] == ["tiny", "tiny-foundry"]
    for report in result["reports"]:
        assert [lv["concurrency"] for lv in report["levels"]] == [1, 2]
        assert all(
            lv["succeeded"] == 4 and lv["tokens_counted"] == lv["tokens_usage"] for lv in report["levels"]
        )
        saved = tmp_path / f"side-{report['model']}.json"
        assert json.loads(saved.read_text()) == report
    rows = result["comparison"]
    assert [(r["concurrency"], r["model"]) for r in rows] == [
        (1, "tiny"),
        (1, "tiny-foundry"),
        (2, "tiny"),
        (2, "tiny-foundry"),
    ]
    assert all(r["speedup"] > 0 and r["ttft_p50_ms"] > 0 for r in rows)


def test_results_go_under_the_stack_state_folder_by_default(host, bench):
    code, _, err = bench(str(host.path), "--concurrency", "1", "--requests", "2", "--max-tokens", "4")
    assert code == 0, err
    saved = next(line for line in err.splitlines() if "results saved to" in line).split("results saved to ")[
        1
    ]
    assert saved.startswith(str(host.state.root / "bench" / "load-"))
    assert json.loads(Path(saved).read_text())["model"] == "tiny"  # the first ready model by default


def test_a_wrong_key_fails_every_request(host, bench, monkeypatch):
    monkeypatch.setenv("BENCH_BAD_KEY", "not-the-key")
    code, report, err = bench(
        "--url",
        host.base_url,
        "--key-env",
        "BENCH_BAD_KEY",
        "--model",
        "tiny",
        "--concurrency",
        "2",
        "--requests",
        "4",
    )
    assert code == 1, err
    level = report["levels"][0]
    assert level["error_rate"] == 1.0 and level["errors"] == {"HTTP 401 invalid_api_key": 4}
    assert "no request succeeded" in err


def test_an_unknown_model_fails_every_request(host, bench):
    code, report, _ = bench(str(host.path), "--model", "nope", "--concurrency", "1", "--requests", "3")
    assert code == 1
    assert report["levels"][0]["errors"] == {"HTTP 404 model_not_found": 3}
    assert report["levels"][0]["error_rate"] == 1.0


def test_a_stopped_stack_says_to_bring_it_up(tmp_path, capsys):
    profile = tmp_path / "idle.yaml"
    profile.write_text("name: idle\nmodels:\n  tiny: {path: bundled:tiny-fp32}\n")
    assert main(["bench", str(profile)]) == 4
    assert "ops up idle" in capsys.readouterr().err


def test_old_subcommand_names_point_to_the_new_commands(capsys):
    assert main(["bench", "gateway"]) == 2
    assert "`ops bench gateway` is now `ops bench-gateway`" in capsys.readouterr().err


def test_the_stub_in_its_own_process_is_loaded_without_error(tmp_path, monkeypatch, capsys):
    stub = subprocess.Popen(
        [sys.executable, "-m", "ops", "bench-stub", "--port", "0", "--chunks", "3", "--key", "stub-key"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = stub.stdout.readline().split()[1]
        monkeypatch.setenv("STUB_KEY", "stub-key")
        code = main(
            [
                "bench",
                "--url",
                url,
                "--key-env",
                "STUB_KEY",
                "--concurrency",
                "4",
                "--requests",
                "50",
                "--json",
            ]
        )
        report = json.loads(capsys.readouterr().out)
    finally:
        stub.terminate()
        stub.wait(timeout=10)
    assert code == 0
    level = report["levels"][0]
    assert level["error_rate"] == 0.0 and level["tokens_counted"] == level["tokens_usage"] == 150
    assert report["model"] == "stub" and level["client_cpu_s"] > 0


def test_overhead_mode_measures_the_generator_against_a_stub_process():
    from ops.bench.stub import overhead

    figures = overhead([2], requests=100, chunks=3, delay_ms=5)
    assert len(figures) == 1
    level = figures[0]
    assert (level["concurrency"], level["requests"], level["errors"]) == (2, 100, 0)
    assert level["ceiling_per_s"] == pytest.approx(400)
    assert level["requests_per_s"] > 0 and level["generator_cpu_us_per_request"] > 0
    assert level["stub_cpu_percent"] > 0 and level["e2e_p50_ms"] >= 5


def test_bench_gateway_measures_both_serving_paths_and_the_gateway_to_each(capsys):
    code = main(["bench-gateway", "--max-tokens", "8", "--runs", "1", "--samples", "10", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    paths = {p["path"]: p for p in result["paths"]}
    assert list(paths) == ["onnxruntime-genai", "foundry", "gateway", "batching", "gateway to batching"]
    assert all(p["tokens"] > 0 and p["tokens_per_s"] > 0 and p["first_token_ms"] > 0 for p in paths.values())
    # The same greedy answer on every path: the same number of tokens.
    assert len({p["tokens"] for p in paths.values()}) == 1
    assert result["batching_fraction"] == paths["batching"]["tokens_per_s"] / paths["foundry"]["tokens_per_s"]
