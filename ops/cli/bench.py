"""``ops bench [PROFILE]``: load the gateway (or any OpenAI-compatible URL) at several concurrency levels."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ops.cli import app, output
from ops.errors import ExitCode, ProfileError, UsageError

#: The subcommands ``ops bench`` used to have, now top-level commands of their own.
MOVED = {"gateway": "ops bench-gateway", "up": "ops bench-up"}


def parse_levels(text: str) -> list[int]:
    """``"1,2,4,8"`` as ``[1, 2, 4, 8]``; every level a positive integer."""
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        levels = []
    if not levels or min(levels) < 1:
        raise UsageError(
            f"--concurrency must be positive integers separated by commas, got {text!r}", hint="e.g. 1,2,4,8"
        )
    return levels


def resolve_target(profile: str | None, url: str | None, key_env: str | None):
    """The library's target, with a pointer to the new names for ``ops bench gateway|up``."""
    from ops.bench import target

    try:
        return target.resolve(profile, url, key_env)
    except ProfileError as exc:
        if profile in MOVED:
            raise UsageError(
                f"`ops bench {profile}` is now `{MOVED[profile]}`", hint=f"run `{MOVED[profile]}`"
            ) from None
        raise exc


@app.command("bench")
def bench_command(
    profile: str = typer.Argument(None, help="Profile name or path (default: workshop)."),
    model: str = typer.Option(
        None,
        "--model",
        help="Model to send the requests to (default: the first ready one); several, comma-separated "
        "(e.g. the same model on both serving paths), are measured side by side, levels interleaved.",
    ),
    concurrency: str = typer.Option("1,2,4,8", "--concurrency", help="Concurrency levels, e.g. 1,2,4,8."),
    requests: int = typer.Option(40, "--requests", min=1, help="Counted requests per level."),
    warmup: int = typer.Option(
        None, "--warmup", min=0, help="Uncounted requests per level (default: one per worker)."
    ),
    max_tokens: int = typer.Option(128, "--max-tokens", min=1),
    url: str = typer.Option(
        None, "--url", help="Any OpenAI-compatible base URL instead of the stack's gateway."
    ),
    key_env: str = typer.Option(None, "--key-env", help="Environment variable holding the key for --url."),
    timeout: float = typer.Option(300.0, "--timeout", min=1, help="Seconds per request."),
    out: Path = typer.Option(None, "--out", help="Results file (default: under the stack's state folder)."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Closed-loop load: TTFT, inter-token latency, end to end (p50/p90/p95/p99), tokens/s, requests/s, errors."""
    from ops.bench import load
    from ops.bench.target import default_model

    levels = parse_levels(concurrency)
    target = resolve_target(profile, url, key_env)
    models = [m.strip() for m in model.split(",") if m.strip()] if model else []
    if len(models) > 1:
        _side_by_side(target, models, levels, requests, max_tokens, warmup, timeout, out, json_)
        return
    model = models[0] if models else default_model(target)
    output.note(
        f"loading {model} at {target.url}: concurrency {concurrency}, {requests} requests each", "dim"
    )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[errors]} errors"),
        TimeElapsedColumn(),
        console=output.err,
    ) as bar:
        warm = {c: c if warmup is None else warmup for c in levels}
        tasks = {c: bar.add_task(f"concurrency {c}", total=warm[c] + requests, errors=0) for c in levels}

        def progress(event: load.Progress) -> None:
            # Warm-up and counted requests fill one bar per level; the library counts each phase from 1.
            done = event.done + (warm[event.concurrency] if event.phase == "measure" else 0)
            bar.update(tasks[event.concurrency], completed=done, errors=event.errors)

        report = load.run(target, model, levels, requests, max_tokens, warmup, timeout, progress)
    path = load.save(report, out or target.results_dir / f"load-{datetime.now():%Y%m%d-%H%M%S}.json")
    if json_:
        output.emit_json(report)
        output.note(f"results saved to {path}", "dim")
    else:
        _render(report)
        output.line(f"results saved to {path}")
    for text in report.notes:
        output.note(text)
    if not any(level.succeeded for level in report.levels):
        output.note("no request succeeded: see the errors above", "red")
        raise typer.Exit(ExitCode.FAILURE)


def _render(report) -> None:
    output.line(
        f"{report.model} at {report.url}, {report.max_tokens} max tokens, "
        f"{report.requests_per_level} counted requests per level (warm-up excluded), usage: {report.usage_source}"
    )
    columns = (
        "concurrency",
        "requests",
        "errors",
        "req/s",
        "output tok/s",
        "tokens (SSE)",
        "usage",
        "client CPU",
    )
    table = Table(*columns, box=None, header_style="bold")
    for level in report.levels:
        errors = f"{level.error_rate:.1%}"
        if level.errors:
            errors += " (" + ", ".join(f"{k}: {v}" for k, v in level.errors.items()) + ")"
        table.add_row(
            str(level.concurrency),
            str(level.requests),
            f"[red]{output.escape(errors)}[/]" if level.failed else errors,
            f"{level.requests_per_s:,.1f}",
            f"{level.output_tokens_per_s:,.0f}",
            str(level.tokens_counted),
            "-" if level.tokens_usage is None else str(level.tokens_usage),
            f"{level.client_cpu_percent:.0f}%",
        )
    output.out.print(table)
    latency = Table("concurrency", "ms", "p50", "p90", "p95", "p99", "mean", box=None, header_style="bold")
    for level in report.levels:
        metrics = {
            "TTFT": level.ttft_ms,
            "ITL": level.itl_ms,
            "TPOT": level.tpot_ms,
            "end to end": level.e2e_ms,
        }
        for name, dist in metrics.items():
            figures = (dist.p50, dist.p90, dist.p95, dist.p99, dist.mean)
            latency.add_row(str(level.concurrency), name, *(f"{v:,.2f}" for v in figures))
    output.out.print(latency)


def _side_by_side(target, models, levels, requests, max_tokens, warmup, timeout, out, json_) -> None:
    """Measure ``models`` level by level in turn; print each one's figures and a comparison."""
    from ops.bench import load
    from ops.bench.side import comparison, run_side_by_side

    output.note(f"loading {', '.join(models)} at {target.url}, side by side: concurrency {levels}", "dim")

    def progress(model: str, event: load.Progress) -> None:
        if event.done == event.total:
            output.note(
                f"  {model}: concurrency {event.concurrency} {event.phase} done ({event.errors} errors)",
                "dim",
            )

    reports = run_side_by_side(target, models, levels, requests, max_tokens, warmup, timeout, progress)
    stamp = f"{datetime.now():%Y%m%d-%H%M%S}"
    paths = [
        load.save(
            r,
            (
                out.with_name(f"{out.stem}-{r.model}{out.suffix}")
                if out
                else target.results_dir / f"load-{stamp}-{r.model}.json"
            ),
        )
        for r in reports
    ]
    rows = comparison(reports)
    if json_:
        output.emit_json({"reports": reports, "comparison": rows})
    else:
        for report in reports:
            _render(report)
        table = Table(
            "concurrency",
            "model",
            "output tok/s",
            f"vs {models[0]}",
            "TTFT p50",
            "TTFT p95",
            "ITL p50",
            box=None,
            header_style="bold",
        )
        for row in rows:
            table.add_row(
                str(row.concurrency),
                row.model,
                f"{row.tokens_per_s:,.0f}",
                f"{row.speedup:.2f}x",
                f"{row.ttft_p50_ms:,.0f} ms",
                f"{row.ttft_p95_ms:,.0f} ms",
                f"{row.itl_p50_ms:,.1f} ms",
            )
        output.out.print(table)
    output.note("results saved to " + ", ".join(str(p) for p in paths), "dim")
    for report in reports:
        for text in report.notes:
            output.note(f"{report.model}: {text}")
    if not all(any(level.succeeded for level in r.levels) for r in reports):
        output.note("a model had no request succeed: see the errors above", "red")
        raise typer.Exit(ExitCode.FAILURE)
