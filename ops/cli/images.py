"""``ops images [PROFILE]`` and ``ops images build PROFILE [SERVICE]``."""

from __future__ import annotations

import typer
from rich.table import Table

from ops import inventory
from ops import plan as stack_plan
from ops.cli import app, output

images_app = typer.Typer(help="Service images: what each uses, where it came from; build ahead of time.")
app.add_typer(images_app, name="images")


@images_app.callback(invoke_without_command=True)
def images_command(
    ctx: typer.Context,
    profile: str = typer.Option("workshop", "--profile", "-p", help="Profile name or path."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show each service's image, its policy, and whether (and how) it is on this machine."""
    if ctx.invoked_subcommand is not None:
        return
    rows = inventory.images(stack_plan.load(profile, ask_catalog=False))
    if json_:
        output.emit_json(rows)
        return
    table = Table(
        "service",
        "policy",
        "image",
        "build tag",
        "on this machine",
        "origin",
        "size",
        box=None,
        header_style="bold",
    )
    for r in rows:
        size = f"{r.size_bytes / 1024**3:.2f} GB" if r.size_bytes else "-"
        table.add_row(r.service, r.policy, r.image, r.build_tag or "-", r.present or "no", r.origin, size)
    output.out.print(table)


@images_app.command("build")
def build_command(
    profile: str = typer.Argument("workshop", help="Profile name or path."),
    service: str = typer.Argument(None, help="Only this service."),
) -> None:
    """Build (from the recipes in stacks/) or pull the images now, so `ops up` does not wait for them."""
    for tag, _id, source in inventory.build_images(
        stack_plan.load(profile, ask_catalog=False), service, lambda t: output.note(f"  {t}", style="dim")
    ):
        output.line(f"{tag}: {source}")
