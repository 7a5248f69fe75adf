"""``ops compare [PROFILE] --models A,B``: the same prompts to several models, side by side, with a report."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table

from ops.cli import app, output
from ops.errors import ExitCode

ANSWER_WIDTH = 60


@app.command("compare")
def compare_command(
    profile: str = typer.Argument(None, help="Profile name or path (default: workshop)."),
    models: str = typer.Option(
        ..., "--models", help="Two or more models, separated by commas: smollm2,smollm2-fp32."
    ),
    prompts: Path = typer.Option(
        None, "--prompts", help="YAML list of prompts (default: 5 built-in prompts)."
    ),
    prices: Path = typer.Option(
        None, "--prices", help="YAML: MODEL: {input_per_1k: X, output_per_1k: Y} for models that cost money."
    ),
    max_tokens: int = typer.Option(256, "--max-tokens", min=1),
    url: str = typer.Option(
        None, "--url", help="Any OpenAI-compatible base URL instead of the stack's gateway."
    ),
    key_env: str = typer.Option(None, "--key-env", help="Environment variable holding the key for --url."),
    timeout: float = typer.Option(300.0, "--timeout", min=1, help="Seconds per request."),
    out: Path = typer.Option(None, "--out", help="Folder for report.html and compare.json."),
    evaluate: bool = typer.Option(
        False,
        "--eval",
        help="Also score the models on the built-in questions (as `ops eval`): a Checked answers section.",
    ),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Answers, latency (TTFT, total), tokens/s, tokens used and cost per model; an HTML report with charts."""
    from ops.bench import compare, compare_report
    from ops.cli.bench import resolve_target

    names = [m.strip() for m in models.split(",") if m.strip()]
    chosen = compare.load_prompts(prompts) if prompts else compare.BUILTIN_PROMPTS
    price_list = compare.load_prices(prices) if prices else {}
    target = resolve_target(profile, url, key_env)
    result = compare.run(
        target, names, chosen, max_tokens, price_list, timeout, say=lambda t: output.note(f"  {t}", "dim")
    )
    checked = _checked(profile, target, names) if evaluate else None
    folder = out or target.results_dir / f"compare-{datetime.now():%Y%m%d-%H%M%S}"
    data, html = compare_report.save(result, folder, checked)
    if json_:
        output.emit_json(result if checked is None else {**vars(result), "checked": checked})
        output.note(f"report: {html} (data: {data})", "dim")
    else:
        _render(result)
        if checked is not None:
            from ops.cli.eval import render as render_checked

            output.line("checked answers:")
            render_checked(checked)
        output.line(f"report: {html}")
        output.line(f"data:   {data}")
    failed = sum(not a.ok for a in result.answers)
    if failed:
        output.note(f"{failed} of {len(result.answers)} answers failed", "red")
        raise typer.Exit(ExitCode.FAILURE)


def _checked(profile: str | None, target, names: list[str]):
    """``ops eval``'s built-in questions to the same models, at its own defaults."""
    from ops.bench import eval as checks
    from ops.bench import eval_questions

    return checks.run_for(
        profile, target, names, eval_questions.load(), say=lambda t: output.note(f"  {t}", "dim")
    )


def _money(value: float | None) -> str:
    return "?" if value is None else f"${value:.5f}"


def _render(result) -> None:
    table = Table("prompt", "model", "TTFT ms", "total ms", "tok/s", "tokens", "cost", "answer", box=None)
    table.header_style = "bold"
    for prompt in result.prompts:
        for summary in result.models:
            a = result.answer(prompt.name, summary.model)
            if not a.ok:
                table.add_row(prompt.name, a.model, "", "", "", "", "", f"[red]{output.escape(a.error)}[/]")
                continue
            text = " ".join(a.text.split())
            text = text if len(text) <= ANSWER_WIDTH else text[: ANSWER_WIDTH - 1] + "…"
            table.add_row(
                prompt.name,
                a.model,
                f"{a.ttft_ms:,.1f}",
                f"{a.total_ms:,.1f}",
                f"{a.tokens_per_s:,.1f}",
                f"{a.prompt_tokens if a.prompt_tokens is not None else '?'}+{a.completion_tokens}",
                _money(a.cost),
                output.escape(text),
            )
    output.out.print(table)
    summary = Table(
        "model", "where", "answered", "TTFT ms", "total ms", "tok/s", "tokens in+out", "cost", box=None
    )
    summary.header_style = "bold"
    for m in result.models:
        summary.add_row(
            m.model,
            m.locality,
            f"{m.answered}/{m.answered + m.failed}",
            f"{m.ttft_ms:,.1f}",
            f"{m.total_ms:,.1f}",
            f"{m.tokens_per_s:,.1f}",
            f"{m.prompt_tokens}+{m.completion_tokens}",
            _money(m.cost),
        )
    output.line("medians over the prompts; cost: local models are free, others from --prices (? = no price)")
    output.out.print(summary)
