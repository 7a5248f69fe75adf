"""`ops smoke`: on-device inference, the gateway, and each service (the WebGPU demo in a real browser)."""

from __future__ import annotations

import json

import pytest

from ops.cli import main
from tests.integration.hosts import free_port


@pytest.fixture
def profile(tmp_path, docker_client, base_image):
    path = tmp_path / "smokey.yaml"
    path.write_text(
        f"""\
name: smokey
models:
  tiny: {{path: bundled:tiny-fp32}}
  tiny-int4: {{path: bundled:tiny-int4}}
gateway: {{port: {free_port()}}}
services:
  webgpu-demo:
    kind: webgpu-demo
    image_policy: build
    ports: ["127.0.0.1:{free_port()}:8080"]
"""
    )
    yield str(path)
    main(["down", "--volumes", "--yes", str(path)])


def run(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_smoke_fails_with_the_fix_when_the_stack_is_down(profile, capsys):
    code, out, _ = run(capsys, "smoke", "--json", profile)
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    steps = {s["name"]: s for s in report["steps"]}
    assert steps["in-process tiny (cpu)"]["status"] == "ok"
    assert steps["gateway"]["status"] == "fail" and "ops up smokey" in steps["gateway"]["detail"]
    assert steps["webgpu-demo"]["detail"] == "not running: run `ops up smokey`"


def test_smoke_passes_on_a_running_stack_with_figures(profile, capsys):
    assert run(capsys, "up", profile)[0] == 0
    code, out, err = run(capsys, "smoke", "--json", profile)
    report = json.loads(out)
    assert code == 0, report
    assert report["device"] == "cpu"
    steps = {s["name"]: s for s in report["steps"]}
    figures = steps["in-process tiny (cpu)"]["metrics"]
    assert figures["tokens"] == 64 and figures["tokens_per_s"] > 0 and figures["load_ms"] > 0
    assert figures["first_token_ms"] > 0 and figures["peak_rss_mb"] > 0
    for name in ("gateway tiny (stream)", "gateway tiny (no stream)", "gateway tiny-int4 (stream)"):
        assert steps[name]["status"] == "ok", steps[name]
    assert steps["webgpu-demo API"]["status"] == "ok"
    assert steps["webgpu-demo browser"] == {
        "name": "webgpu-demo browser",
        "status": "ok",
        "detail": "predicted on wasm",
        "metrics": {"ep": "wasm"},
    }


def test_forcing_cuda_without_it_is_a_clear_error(profile, capsys):
    code, _, err = run(capsys, "smoke", "--device", "cuda", profile)
    assert code == 1 and "no CUDA provider" in err and "ops-workshop[gpu]" in err


def test_unknown_device_is_usage_error(profile, capsys):
    code, _, err = run(capsys, "smoke", "--device", "tpu", profile)
    assert code == 2 and "unknown device 'tpu'" in err
