"""``ops compare`` of the two bundled tiny models (fp32 and int4) through a real gateway."""

from __future__ import annotations

import json

import pytest

from ops.cli import main

from .hosts import RunningHost


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    running = RunningHost(tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("profiles"), "versus")
    running.start()
    yield running
    running.stop()


@pytest.fixture
def run(host, monkeypatch, capsys):
    monkeypatch.setenv("OPS_HOME", str(host.settings.home))

    def go(*args: str) -> tuple[int, str, str]:
        code = main(["compare", str(host.path), *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return go


def test_tiny_against_tiny_int4_writes_a_report_with_both_models(run, tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text("tiny: {input_per_1k: 0.5, output_per_1k: 1.5}\n")
    out = tmp_path / "report"
    code, stdout, err = run(
        "--models",
        "tiny,tiny-int4",
        "--max-tokens",
        "8",
        "--prices",
        str(prices),
        "--out",
        str(out),
        "--json",
    )
    assert code == 0, err
    result = json.loads(stdout)
    assert json.loads((out / "compare.json").read_text()) == result
    assert f"report: {out / 'report.html'}" in err
    assert len(result["answers"]) == 2 * 5
    for answer in result["answers"]:
        assert answer["ok"] and answer["text"] and answer["completion_tokens"] == 8
        assert 0 < answer["ttft_ms"] <= answer["total_ms"] and answer["tokens_per_s"] > 0
        assert answer["prompt_tokens"] > 0
    by = {m["model"]: m for m in result["models"]}
    assert by["tiny"]["answered"] == by["tiny-int4"]["answered"] == 5
    assert by["tiny"]["completion_tokens"] == by["tiny-int4"]["completion_tokens"] == 40
    assert by["tiny"]["locality"] == by["tiny-int4"]["locality"] == "local"
    expected = by["tiny"]["prompt_tokens"] / 1000 * 0.5 + 40 / 1000 * 1.5
    assert by["tiny"]["cost"] == pytest.approx(expected) and by["tiny-int4"]["cost"] == 0.0
    page = (out / "report.html").read_text()
    assert page.count("<svg") == 4
    for model in ("tiny", "tiny-int4"):
        assert f"<td>{model}</td>" in page
        assert f"{by[model]['total_ms']:,.1f}" in page and f"{by[model]['tokens_per_s']:,.1f}" in page


def test_the_table_and_a_default_report_folder_under_the_stack_state(run, host):
    code, stdout, _ = run("--models", "tiny-int4,tiny", "--max-tokens", "4")
    assert code == 0
    assert "tiny-int4" in stdout and "first-steps" in stdout and "tok/s" in stdout
    report = next(line for line in stdout.splitlines() if line.startswith("report: ")).split(": ", 1)[1]
    assert report.startswith(str(host.state.root / "bench" / "compare-")) and report.endswith("report.html")


def test_an_unknown_model_fails_in_the_report_and_the_exit_code(run, tmp_path):
    code, stdout, err = run("--models", "tiny,nope", "--max-tokens", "4", "--out", str(tmp_path), "--json")
    assert code == 1
    nope = {m["model"]: m for m in json.loads(stdout)["models"]}["nope"]
    assert (nope["answered"], nope["failed"]) == (0, 5)
    assert "5 of 10 answers failed" in err
    assert "HTTP 404 model_not_found" in (tmp_path / "report.html").read_text()
