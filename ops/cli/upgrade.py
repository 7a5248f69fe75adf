"""``ops upgrade [PROFILE] SERVICE --to VERSION``: the new version tried on a copy of the data, then switched to."""

from __future__ import annotations

import typer

from ops import plan as stack_plan
from ops import upgrade
from ops.cli import app, output


@app.command("upgrade")
def upgrade_command(
    first: str = typer.Argument(..., metavar="[PROFILE]", help="Profile name or path (default: workshop)."),
    second: str = typer.Argument(None, metavar="SERVICE", help="The service to upgrade.", show_default=False),
    to: str = typer.Option(
        ..., "--to", help="The version to switch to (a build argument's value or an image tag)."
    ),
    backup: bool = typer.Option(
        True, "--backup/--no-backup", help="Back up the stack's volumes first (no secrets)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Upgrade a running service: back up, try the new version on a copy of its data, then switch.

    If anything fails, the old version keeps running on its data, and the reason is printed.
    """
    profile, service = (first, second) if second is not None else ("workshop", first)
    plan = stack_plan.load(profile, ask_catalog=False)
    report = upgrade.upgrade(
        plan, service, to, say=lambda text: output.note(f"  {text}", style="dim"), backup=backup
    )
    if as_json:
        output.emit_json(report)
        return
    output.line(
        f"{report.service}: {report.from_version} -> {report.to_version} in {report.seconds:.0f} s ({report.image})"
    )
    output.line("  " + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in report.steps.items()))
    if report.backup:
        output.line(f"  backup taken before: {report.backup}")
    if report.kept_in:
        output.line(
            f"  version kept in {report.kept_in} (the profile's version is unchanged; changing it wins)"
        )
