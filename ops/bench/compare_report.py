"""The HTML report of ``ops compare``: one self-contained file, its charts inline SVG drawn by matplotlib.

Nothing is fetched when the file is opened (no scripts, fonts or images from elsewhere), so it
works offline and can be mailed as it is. Chart text is drawn as paths, so it looks the same
without the fonts of the machine that made it.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from ops.bench.compare import Comparison
from ops.charts import figure_class, svg

if TYPE_CHECKING:
    from ops.bench.eval import EvalRun

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#1d2330}
h1{font-size:1.6rem}h2{margin-top:2.2rem;border-bottom:1px solid #dde;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.6rem 0}th,td{padding:.3rem .7rem;border-bottom:1px solid #e4e6ee;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f4f5f9}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:1rem}
.charts svg{width:100%;height:auto}
.answers{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:.8rem}
.answer{border:1px solid #dde;border-radius:6px;padding:.6rem .8rem;background:#fbfbfd}
.answer pre,.prompt{white-space:pre-wrap;word-break:break-word;font:13px/1.4 ui-monospace,monospace;margin:.4rem 0}
.prompt{background:#f4f5f9;padding:.5rem .7rem;border-radius:4px}
.meta{color:#5b6275;font-size:.9rem}.fail{color:#b42318}
"""


def _money(value: float | None) -> str:
    return "unknown (no price)" if value is None else f"${value:.6f}"


def _charts(comparison: Comparison) -> list[str]:
    """Inline SVG charts: latencies and tokens/s per prompt, tokens and cost per model."""
    Figure = figure_class("comparison report")  # noqa: N806 (the class, named as matplotlib names it)
    models = [m.model for m in comparison.models]
    prompts = [p.name for p in comparison.prompts]
    width = 0.8 / len(models)
    svgs = []
    for title, field, unit in (
        ("Time to first token", "ttft_ms", "ms"),
        ("Total time", "total_ms", "ms"),
        ("Output tokens per second (end to end)", "tokens_per_s", "tokens/s"),
    ):
        figure = Figure(figsize=(7, 3.6), layout="constrained")
        axes = figure.add_subplot()
        for i, model in enumerate(models):
            values = [getattr(comparison.answer(p, model), field) for p in prompts]
            axes.bar([x + i * width for x in range(len(prompts))], values, width, label=model)
        axes.set_xticks([x + width * (len(models) - 1) / 2 for x in range(len(prompts))], prompts)
        axes.set_title(title)
        axes.set_ylabel(unit)
        # Below the axes, so the legend never hides a bar.
        axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=len(models), frameon=False)
        svgs.append(svg(figure))
    figure = Figure(figsize=(7, 3.6), layout="constrained")
    tokens, money = figure.subplots(1, 2)
    prompt_tokens = [m.prompt_tokens for m in comparison.models]
    tokens.bar(models, prompt_tokens, label="prompt")
    tokens.bar(models, [m.completion_tokens for m in comparison.models], bottom=prompt_tokens, label="output")
    tokens.set_title("Tokens used (all prompts)")
    tokens.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=2, frameon=False)
    money.bar(models, [m.cost or 0.0 for m in comparison.models], color="#c77c2a")
    money.set_title("API cost (all prompts, $)")
    for i, summary in enumerate(comparison.models):
        if summary.cost is None or summary.cost == 0:
            label = "no price" if summary.cost is None else "free"
            money.annotate(label, (i, 0), ha="center", va="bottom")
    svgs.append(svg(figure))
    return svgs


def _summary(comparison: Comparison) -> str:
    rows = []
    for m in comparison.models:
        price = (
            f"${m.price.input_per_1k:g} in / ${m.price.output_per_1k:g} out per 1k"
            if m.price
            else ("free (on this machine)" if m.locality == "local" else "no price given")
        )
        rows.append(
            f"<tr><td>{escape(m.model)}</td><td>{m.locality}</td><td>{m.answered}</td>"
            f"<td class='{'fail' if m.failed else ''}'>{m.failed}</td><td>{m.ttft_ms:,.1f}</td>"
            f"<td>{m.total_ms:,.1f}</td><td>{m.tokens_per_s:,.1f}</td><td>{m.prompt_tokens}</td>"
            f"<td>{m.completion_tokens}</td><td>{escape(price)}</td><td>{_money(m.cost)}</td></tr>"
        )
    head = (
        "<tr><th>model</th><th>where</th><th>answered</th><th>failed</th><th>TTFT ms (median)</th>"
        "<th>total ms (median)</th><th>tokens/s (median)</th><th>prompt tokens</th><th>output tokens</th>"
        "<th>price</th><th>cost</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def _prompts(comparison: Comparison) -> str:
    parts = []
    for prompt in comparison.prompts:
        cards = []
        for summary in comparison.models:
            a = comparison.answer(prompt.name, summary.model)
            if a.ok:
                meta = (
                    f"TTFT {a.ttft_ms:,.1f} ms · total {a.total_ms:,.1f} ms · {a.tokens_per_s:,.1f} tokens/s · "
                    f"{a.prompt_tokens if a.prompt_tokens is not None else '?'} + {a.completion_tokens} tokens · "
                    f"{_money(a.cost)}"
                )
                body = f"<pre>{escape(a.text) or '<em>(empty answer)</em>'}</pre>"
            else:
                meta, body = "failed", f"<p class='fail'>{escape(a.error)}</p>"
            cards.append(
                f"<div class='answer'><strong>{escape(a.model)}</strong><div class='meta'>{meta}</div>{body}</div>"
            )
        parts.append(
            f"<h3>{escape(prompt.name)} <span class='meta'>({escape(prompt.kind)})</span></h3>"
            f"<div class='prompt'>{escape(prompt.text)}</div><div class='answers'>{''.join(cards)}</div>"
        )
    return "".join(parts)


def _score(score) -> str:
    if not score.items:
        return "skipped" if score.skipped else "-"
    cited = getattr(score, "cited_correct", None)
    detail = f"; answer {score.answer_correct}, cited {cited}" if cited is not None else ""
    return f"{score.score:.0%} <span class='meta'>({score.correct}/{score.items}{detail})</span>"


def _checked(checked: EvalRun) -> str:
    """The "Checked answers" section: each model's score per kind of question, and what was asked how."""
    kinds = [k for k in ("fact", "extraction", "rag") if any(k in m.kinds for m in checked.models)]
    head = "".join(f"<th>{k}</th>" for k in (*kinds, "overall", "mean s"))
    rows = []
    for m in checked.models:
        cells = [_score(m.kinds[k]) if k in m.kinds else "-" for k in kinds]
        cells += [_score(m), f"{m.mean_seconds:,.2f}"]
        rows.append(f"<tr><td>{escape(m.model)}</td>{''.join(f'<td>{c}</td>' for c in cells)}</tr>")
    prompt = (
        f"system prompt &ldquo;{escape(checked.system_prompt)}&rdquo;"
        if checked.system_prompt
        else "no system prompt"
    )
    wrong = [i for i in checked.items if i.status != "skipped" and not i.correct]
    items = "".join(
        f"<tr><td>{escape(i.model)}</td><td>{escape(i.id)}</td><td>{escape(' | '.join(i.expected))}</td>"
        f"<td class='{'fail' if i.status == 'error' else ''}'>{escape(i.reason if i.status == 'error' else i.answer)}</td></tr>"
        for i in wrong
    )
    details = (
        f"<details><summary>{len(wrong)} wrong or failed answers</summary><table><tr><th>model</th>"
        f"<th>question</th><th>expected</th><th>answer</th></tr>{items}</table></details>"
        if wrong
        else ""
    )
    return (
        f"<h2>Checked answers</h2><p class='meta'>Questions with known answers "
        f"({escape(', '.join(checked.files))}), greedy, at most {checked.max_tokens} tokens, {prompt}; "
        f"an answer is right when it contains an expected one. rag: {escape(checked.rag)}.</p>"
        f"<table><tr><th>model</th>{head}</tr>{''.join(rows)}</table>{details}"
    )


def render(comparison: Comparison, checked: EvalRun | None = None) -> str:
    """The whole report as one HTML document; ``checked`` adds the "Checked answers" section."""
    names = " vs ".join(escape(m.model) for m in comparison.models)
    charts = "".join(f"<div>{chart}</div>" for chart in _charts(comparison))
    where = escape(comparison.url) + (f" (stack {escape(comparison.stack)})" if comparison.stack else "")
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>ops compare: {names}</title>"
        f"<style>{STYLE}</style></head><body><h1>{names}</h1>"
        f"<p class='meta'>{len(comparison.prompts)} prompts through {where}, at most "
        f"{comparison.max_tokens} output tokens each, greedy, streamed; {comparison.started_at}. "
        "Latencies are medians over the prompts; tokens/s is output tokens over the whole request; "
        "tokens are the server's usage. Local models cost no API money.</p>"
        f"<h2>Summary</h2>{_summary(comparison)}{_checked(checked) if checked else ''}"
        f"<h2>Charts</h2><div class='charts'>{charts}</div>"
        f"<h2>Answers</h2>{_prompts(comparison)}</body></html>\n"
    )


def save(comparison: Comparison, folder: Path, checked: EvalRun | None = None) -> tuple[Path, Path]:
    """Write ``compare.json`` and the self-contained ``report.html`` into ``folder``; return both paths.

    With ``checked``, the checked answers go into both (``compare.json``'s ``checked``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "compare.json"
    body = asdict(comparison) if checked is None else {**asdict(comparison), "checked": asdict(checked)}
    data.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    html = folder / "report.html"
    html.write_text(render(comparison, checked), encoding="utf-8")
    return data, html
