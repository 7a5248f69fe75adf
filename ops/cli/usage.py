"""``ops usage [PROFILE] [--since] [--by] [--json|--csv] [--html FILE]``: who used which model, how much."""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from ops import plan as stack_plan
from ops.cli import app, output
from ops.errors import UsageError
from ops.metering import html, report, store
from ops.private import open_private
from ops.state import StackState

_FIELDS = (
    "requests",
    "errors",
    "refused",
    "prompt_tokens",
    "completion_tokens",
    "ttft_p50_ms",
    "ttft_p95_ms",
)


@app.command("usage")
def usage_command(
    profile: str = typer.Argument("workshop", help="Profile name or path."),
    since: str = typer.Option(
        None, "--since", help="Only requests since then: 30m, 1h, 2d, 1w ago, or a date (2026-12-01T10:00)."
    ),
    by: str = typer.Option(None, "--by", help="participant or model (default: both tables)."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
    csv_: bool = typer.Option(False, "--csv", help="Print CSV (a `by` column says which table a row is of)."),
    html_file: Path = typer.Option(
        None, "--html", help="Also write an HTML report with charts to this file."
    ),
) -> None:
    """Requests, errors, tokens in and out, time to first token and cost, per caller and per model."""
    if json_ and csv_:
        raise UsageError("--json and --csv exclude each other", hint="pick one")
    if by is not None and by not in report.BY:
        raise UsageError(f"--by {by!r} is not a grouping", hint=f"use one of: {', '.join(report.BY)}")
    start = report.parse_since(since) if since is not None else None
    if html_file is not None and not html_file.parent.is_dir():
        raise UsageError(
            f"cannot write {html_file}: folder {html_file.parent} does not exist",
            hint="create it or pick another path",
        )
    plan = stack_plan.load(profile, ask_catalog=False)
    state = StackState.for_stack(plan.name)
    prices = {alias: spec.price for alias, spec in plan.loaded.profile.models.items() if spec.price}
    with store.reading(state.usage_db) as usage:
        if usage is None:
            raise UsageError(
                f"stack {plan.name} has no usage records: its gateway has not run",
                hint=f"`ops up {profile}` starts it; it records each request in {state.usage_db}",
            )
        result = report.build(usage, plan.name, prices, since=start, by=(by,) if by else tuple(report.BY))
        recorded = usage.count()
    if json_:
        output.emit_json(result)
    elif csv_:
        _csv(result)
    elif not recorded:
        output.line(f"no usage recorded yet for stack {plan.name} (in {state.usage_db})")
    elif not result.total.requests:
        output.line(f"no usage of stack {plan.name} since {html.when(start)} ({recorded:,} requests before)")
    else:
        _tables(result)
    if html_file is not None:
        if not result.total.requests:
            output.note(f"nothing to chart: {html_file} not written")
            return
        # 0600 like the participants' sheet: it names people (participants, Open WebUI users' e-mails).
        with os.fdopen(open_private(html_file, os.O_WRONLY | os.O_TRUNC), "wb") as fh:
            fh.write(html.render(result).encode("utf-8"))
        output.note(f"report written to {html_file} (readable by you only)", style="green")


def _tables(result: report.UsageReport) -> None:
    since = "the first request" if result.since is None else html.when(result.since)
    output.line(
        f"usage of stack {result.stack} from {since} to {html.when(result.until)}: "
        f"{result.total.requests:,} requests",
        style="bold",
    )
    for title, rows in (("caller", result.callers), ("model", result.models)):
        if not rows:
            continue
        table = Table(box=None, header_style="bold", padding=(0, 2))
        table.add_column(title)
        for head in html.HEAD:
            table.add_column(head, justify="right")
        for row in (*rows, result.total):
            cells = (output.escape(c) for c in html.cells(row))
            table.add_row(output.escape(row.name), *cells, style="bold" if row is result.total else None)
        _print_whole(table)
    output.line(
        "errors: status 400 or more except 429 (over quota, queue full); "
        f"cost: priced models only ({report.NO_COST}: none used)",
        style="dim",
    )


def _print_whole(table: Table) -> None:
    """Print ``table`` as wide as its figures need, even piped (where rich assumes 80 columns and
    would cut numbers short)."""
    out = output.out
    needed = Measurement.get(out, out.options.update_width(1000), table).maximum
    if needed <= out.width:
        out.print(table)
        return
    wide = Console(
        file=out.file,
        width=needed,
        highlight=False,
        emoji=False,
        force_terminal=out.is_terminal,
        no_color=out.no_color,
    )
    wide.print(table)


def _csv(result: report.UsageReport) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(("by", "name", *_FIELDS, "cost", "currency"))
    for by, rows in (("participant", result.callers), ("model", result.models), ("total", (result.total,))):
        for row in rows:
            figures = [getattr(row, f) for f in _FIELDS]
            figures = ["" if v is None else (round(v, 1) if isinstance(v, float) else v) for v in figures]
            costs = [(f"{amount:.6f}", currency) for currency, amount in sorted((row.cost or {}).items())]
            for cost, currency in costs or [("", "")]:  # a line per currency; unpriced: one, cost empty
                writer.writerow((by, row.name, *figures, cost, currency))
    sys.stdout.flush()
