"""``ops eval [PROFILE]``: questions with known answers to each model of the stack, scored."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table

from ops.cli import app, output
from ops.errors import ExitCode, UsageError

ANSWER_WIDTH = 60


@app.command("eval")
def eval_command(
    profile: str = typer.Argument(None, help="Profile name or path (default: workshop)."),
    models: str = typer.Option(
        None, "--models", help="Models, separated by commas (default: every chat model the gateway lists)."
    ),
    kinds: str = typer.Option(
        None, "--kinds", help="Kinds of questions, separated by commas: fact, extraction, rag (default: all)."
    ),
    questions: Path = typer.Option(
        None, "--questions", help="A YAML file of questions instead of the built-in ones (ops/evals/*.yaml)."
    ),
    max_tokens: int = typer.Option(64, "--max-tokens", min=1, help="Output tokens per answer."),
    system_prompt: bool = typer.Option(
        False,
        "--system-prompt/--no-system-prompt",
        help='Send the same short system prompt ("Answer in a few words.") to every model instead of each '
        "model's own default (measured: it lowers SmolLM2's scores).",
    ),
    timeout: float = typer.Option(120.0, "--timeout", min=1, help="Seconds per answer."),
    out: Path = typer.Option(None, "--out", help="Results file (default: under the stack's state folder)."),
    json_: bool = typer.Option(False, "--json", help="Print the whole result as JSON."),
) -> None:
    """Score each model's answers: facts, extraction from a given passage, and questions on the RAG app's documents."""
    from ops.bench import eval as checks
    from ops.bench import eval_questions
    from ops.cli.bench import resolve_target

    wanted_kinds = checks.parse_kinds(kinds)
    every = eval_questions.load([questions] if questions else None)
    chosen = [q for q in every if q.kind in wanted_kinds]
    if not chosen:
        raise UsageError(
            f"no questions of kind {', '.join(wanted_kinds)} in {questions or eval_questions.BUILTIN_DIR}",
            hint="choose other --kinds, or another --questions file",
        )
    target = resolve_target(profile, None, None)
    names = [m.strip() for m in models.split(",") if m.strip()] if models else None
    names = checks.choose_models(checks.list_models(target), names)
    output.note(f"{len(chosen)} questions to {', '.join(names)} at {target.url}", "dim")
    result = checks.run_for(
        profile,
        target,
        names,
        chosen,
        max_tokens=max_tokens,
        system_prompt=checks.SYSTEM_PROMPT if system_prompt else None,
        timeout=timeout,
        say=lambda t: output.note(f"  {t}", "dim"),
    )
    path = checks.save(result, out or target.results_dir / f"eval-{datetime.now():%Y%m%d-%H%M%S}.json")
    if json_:
        output.emit_json(result)
        output.note(f"results saved to {path}", "dim")
    else:
        render(result)
        output.line(f"results saved to {path}")
    if not result.answered:
        output.note("no question got an answer: see the reasons above", "red")
        raise typer.Exit(ExitCode.FAILURE)


def percent(score) -> str:
    """``12/18 67%`` for a kind's (or a model's) score; ``skipped`` when nothing was asked."""
    if not score.items:
        return "skipped" if score.skipped else "-"
    text = f"{score.correct}/{score.items} {score.score:.0%}"
    if getattr(score, "cited_correct", None) is not None:
        text += f" (answer {score.answer_correct}, cited {score.cited_correct})"
    return text


def render(result) -> None:
    """The scores per model and kind, then every wrong answer."""
    kinds = [k for k in ("fact", "extraction", "rag") if any(k in m.kinds for m in result.models)]
    table = Table("model", *kinds, "overall", "mean s", box=None, header_style="bold")
    for m in result.models:
        cells = [percent(m.kinds[k]) if k in m.kinds else "-" for k in kinds]
        table.add_row(m.model, *cells, percent(m), f"{m.mean_seconds:.2f}")
    output.out.print(table)
    prompt = f'system prompt "{result.system_prompt}"' if result.system_prompt else "no system prompt"
    output.line(
        f"greedy (temperature 0, top_p 1), at most {result.max_tokens} tokens, {prompt}; rag: {result.rag}"
        + (" (with the app's own prompt and token limit)" if result.rag.startswith("through") else "")
    )
    for reason in sorted({i.reason for i in result.items if i.status == "skipped"}):
        if not result.rag.endswith(reason):  # the run's own reason is on the line above
            output.line(f"skipped: {reason}")
    wrong = [i for i in result.items if i.status != "skipped" and not i.correct]
    if not wrong:
        return
    output.line(f"{len(wrong)} wrong or failed:")
    failed = Table("model", "question", "kind", "expected", "answer", box=None, header_style="bold")
    for item in wrong:
        text = " ".join(item.answer.split())
        text = text if len(text) <= ANSWER_WIDTH else text[: ANSWER_WIDTH - 1] + "…"
        if item.status == "error":
            text = f"[red]{output.escape(item.reason)}[/]"
        elif item.cited_correct is False:
            text = output.escape(text) + f" [dim](cited {output.escape(item.cited or 'nothing')})[/]"
        else:
            text = output.escape(text)
        failed.add_row(item.model, item.id, item.kind, output.escape(" | ".join(item.expected)), text)
    output.out.print(failed)
