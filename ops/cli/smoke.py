"""``ops smoke [PROFILE]``: on-device inference, the gateway and each service, pass or fail with the reason."""

from __future__ import annotations

import typer
from rich.table import Table

from ops import plan as stack_plan
from ops.cli import app, output
from ops.errors import ExitCode


@app.command("smoke")
def smoke_command(
    profile: str = typer.Argument("workshop", help="Profile name or path."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda (for the in-process step)."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Run the smoke steps; exit 1 when any step fails."""
    from ops import smoke

    if device not in ("auto", "cpu", "cuda"):
        from ops.errors import UsageError

        raise UsageError(f"unknown device {device!r}", hint="use auto, cpu or cuda")
    report = smoke.run(
        stack_plan.load(profile, ask_catalog=False), device, say=lambda t: output.note(f"  {t}", style="dim")
    )
    if json_:
        output.emit_json({**report.__dict__, "ok": report.ok})
    else:
        table = Table("step", "result", "detail", box=None, header_style="bold")
        colours = {"ok": "green", "fail": "red", "skip": "yellow"}
        for step in report.steps:
            table.add_row(step.name, f"[{colours[step.status]}]{step.status}[/]", output.escape(step.detail))
        output.out.print(table)
        output.line(
            f"device {report.device}; {'all passed' if report.ok else 'FAILED'}",
            style="green" if report.ok else "red",
        )
    if not report.ok:
        raise typer.Exit(ExitCode.FAILURE)
