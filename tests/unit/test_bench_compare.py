"""``ops compare``: prompt and price files, cost, the run order, and the self-contained HTML report."""

from __future__ import annotations

import json

import httpx
import pytest

from ops.bench import compare, compare_report
from ops.bench.compare import Answer, Price
from ops.bench.target import Target
from ops.errors import UsageError

TARGET = Target("http://compare.test/v1", key="k", locality={"small": "local", "big": "cloud"})


def test_prompts_file_takes_strings_and_mappings(tmp_path):
    path = tmp_path / "prompts.yaml"
    path.write_text('- "Explain ONNX"\n- {name: sql, kind: code, prompt: "Write a JOIN"}\n')
    assert compare.load_prompts(path) == (
        compare.Prompt("prompt-1", "custom", "Explain ONNX"),
        compare.Prompt("sql", "code", "Write a JOIN"),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prompt: x\n", "expected a list of prompts"),
        ("- ok\n- 3\n", "prompts.yaml[1]: expected a non-empty string or a mapping with `prompt:`"),
        ("- {prompt: a, colour: red}\n", "prompts.yaml[0]: unknown field(s) colour"),
        ("- {name: a, prompt: x}\n- {name: a, prompt: y}\n", "repeated: a"),
        ("- [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_prompts_files_say_where(tmp_path, text, message):
    path = tmp_path / "prompts.yaml"
    path.write_text(text)
    with pytest.raises(UsageError) as info:
        compare.load_prompts(path)
    assert message in info.value.message


def test_prices_file_and_its_errors(tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text("big: {input_per_1k: 0.5, output_per_1k: 2}\n")
    assert compare.load_prices(path) == {"big": Price(0.5, 2.0)}
    for text, message in (
        ("big: {input_per_1k: 0.5}\n", "big: expected exactly input_per_1k and output_per_1k"),
        ("big: {input_per_1k: -1, output_per_1k: 2}\n", "big.input_per_1k: expected a number >= 0, got -1"),
        ("big: {input_per_1k: cheap, output_per_1k: 2}\n", "big.input_per_1k: expected a number"),
        ("- big\n", "expected a mapping of model names"),
    ):
        path.write_text(text)
        with pytest.raises(UsageError) as info:
            compare.load_prices(path)
        assert message in info.value.message
    with pytest.raises(UsageError, match="cannot read"):
        compare.load_prices(tmp_path / "missing.yaml")


def test_cost_is_priced_free_when_local_and_unknown_otherwise():
    assert compare.cost(Price(0.5, 2.0), "cloud", 1000, 500) == pytest.approx(0.5 + 1.0)
    assert compare.cost(None, "local", 1000, 500) == 0.0
    assert compare.cost(None, "cloud", 1000, 500) is None
    assert compare.cost(None, "unknown", 1000, 500) is None


def _answer(model: str, ok: bool = True, **figures) -> Answer:
    base = dict(
        prompt="p",
        model=model,
        ok=ok,
        error="" if ok else "HTTP 500",
        text="x",
        ttft_ms=10.0,
        total_ms=100.0,
        prompt_tokens=5,
        completion_tokens=10,
        tokens_per_s=100.0,
        cost=0.0,
    )
    return Answer(**{**base, **figures})


def test_summary_takes_medians_and_sums_and_leaves_failures_out():
    answers = [
        _answer("m", ttft_ms=10, total_ms=100, cost=0.25),
        _answer("m", ttft_ms=30, total_ms=300, cost=0.5),
        _answer("m", ttft_ms=20, total_ms=200, cost=0.25),
        _answer("m", ok=False, ttft_ms=9000, cost=None),
    ]
    summary = compare.summarise("m", "cloud", Price(1, 1), answers)
    assert (summary.answered, summary.failed) == (3, 1)
    assert (summary.ttft_ms, summary.total_ms) == (20, 200)
    assert (summary.prompt_tokens, summary.completion_tokens) == (15, 30)
    assert summary.cost == pytest.approx(1.0)
    unpriced = compare.summarise("m", "cloud", None, [_answer("m", cost=None), _answer("m", cost=0.1)])
    assert unpriced.cost is None


def _server(seen: list[tuple[str, str]]):
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        text = body["messages"][0]["content"]
        seen.append((body["model"], text))
        if body["model"] == "gone":
            return httpx.Response(404, json={"error": {"code": "model_not_found"}})
        events = [
            {"choices": [{"delta": {"content": f"{body['model']} says "}}]},
            {"choices": [{"delta": {"content": "<b>hi</b>"}}]},
            {"choices": [], "usage": {"prompt_tokens": 1000, "completion_tokens": 500}},
        ]
        sse = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        return httpx.Response(200, content=sse.encode())

    return httpx.MockTransport(handler)


def test_every_prompt_goes_to_every_model_in_rotating_order_after_a_warm_up():
    seen: list[tuple[str, str]] = []
    prompts = compare.BUILTIN_PROMPTS[:3]
    result = compare.run(
        TARGET, ["small", "big"], prompts, prices={"big": Price(0.5, 2.0)}, transport=_server(seen)
    )
    assert seen[:2] == [("small", "Hi"), ("big", "Hi")]  # warm-ups, not in the results
    assert [m for m, _ in seen[2:]] == ["small", "big", "big", "small", "small", "big"]
    assert len(result.answers) == 6 and all(a.ok for a in result.answers)
    big = result.answer(prompts[1].name, "big")
    assert big.text == "big says <b>hi</b>" and (big.prompt_tokens, big.completion_tokens) == (1000, 500)
    assert big.cost == pytest.approx(1.5) and result.answer(prompts[1].name, "small").cost == 0.0
    by = {m.model: m for m in result.models}
    assert by["big"].cost == pytest.approx(4.5) and by["small"].cost == 0.0
    assert (by["small"].locality, by["big"].locality) == ("local", "cloud")


def test_a_failing_model_is_reported_not_raised():
    result = compare.run(TARGET, ["small", "gone"], compare.BUILTIN_PROMPTS[:2], transport=_server([]))
    gone = {m.model: m for m in result.models}["gone"]
    assert (gone.answered, gone.failed, gone.locality, gone.cost) == (0, 2, "unknown", 0)
    assert result.answer(compare.BUILTIN_PROMPTS[0].name, "gone").error == "HTTP 404 model_not_found"


def test_two_different_models_are_needed():
    for models in (["small"], ["small", "small"], []):
        with pytest.raises(UsageError, match="two or more different models"):
            compare.run(TARGET, models, transport=_server([]))


def test_the_report_is_one_self_contained_html_file_with_charts(tmp_path):
    result = compare.run(
        TARGET,
        ["small", "big"],
        compare.BUILTIN_PROMPTS,
        prices={"big": Price(0.5, 2.0)},
        transport=_server([]),
    )
    data, html = compare_report.save(result, tmp_path / "out")
    page = html.read_text()
    assert json.loads(data.read_text())["models"][1]["model"] == "big"
    assert page.count("<svg") == 4 and "<?xml" not in page
    assert "src=" not in page and "<script" not in page and "<link" not in page  # nothing fetched on opening
    assert "small says &lt;b&gt;hi&lt;/b&gt;" in page and "<b>hi</b>" not in page  # answers are escaped
    assert "$7.500000" in page and "free (on this machine)" in page
    for prompt in compare.BUILTIN_PROMPTS:
        assert prompt.name in page
