"""``ops doctor [PROFILE] [--json] [--fix]``: find what is wrong, say how to fix it."""

from __future__ import annotations

import typer

from ops.cli import app, output
from ops.errors import ExitCode
from ops.secrets import redact

COLOURS = {"ok": "green", "warn": "yellow", "fail": "red", "skipped": "dim"}


@app.command("doctor")
def doctor_command(
    profile: str = typer.Argument(
        None, help="Profile name or path; default: the one running stack's, else workshop."
    ),
    json_: bool = typer.Option(False, "--json", help="Print JSON (schema in the README)."),
    fix: bool = typer.Option(
        False,
        "--fix",
        help="Apply the safe fixes (restart a dead host, start a stopped container, reset "
        "Open WebUI's stored connection), then check again.",
    ),
) -> None:
    """Check the machine, Docker, the network, the models, the gateway and each service; exit 1 on a failure."""
    from ops.doctor.runner import default_profile, diagnose

    if profile is None:
        profile = default_profile()
        output.note(f"profile: {profile}", style="dim")
    report = diagnose(profile, fix=fix)
    if json_:
        output.emit_json(report.to_json())
    else:
        _render(report)
    if not report.ok:
        raise typer.Exit(ExitCode.FAILURE)


def _render(report) -> None:
    for attempt in report.fixes:
        mark = "[green]fixed[/]" if attempt.ok else "[red]fix failed[/]"
        output.out.print(f"{mark} {output.escape(attempt.action)}: {output.escape(attempt.detail)}")
    width = max((len(r.name) for r in report.checks), default=0)
    group = None
    for result in report.checks:
        if result.group != group:
            group = result.group
            output.out.print(f"[bold]{group}[/]")
        status = result.status.value
        # One line per check, soft-wrapped by the terminal: a table squeezes long details unreadably.
        output.out.print(
            f"  [{COLOURS[status]}]{status:<7}[/] {output.escape(result.name):<{width}}  "
            f"{output.escape(redact(result.detail))}"
        )
        if result.fix and status != "ok":
            output.out.print(f"  {'':<7} {'':<{width}}  [dim]fix:[/] {output.escape(redact(result.fix))}")
    text = ", ".join(f"{n} {s}" for s, n in report.summary.items() if n)
    output.line(
        f"{report.profile}: {text}" + ("" if report.ok else " - see the fixes above"),
        style="green" if report.ok else "red",
    )
