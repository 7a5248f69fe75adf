"""``ops images [PROFILE]``, ``ops images build PROFILE [SERVICE]`` and ``ops images prune``."""

from __future__ import annotations

import sys

import typer
from rich.table import Table

from ops import inventory
from ops import plan as stack_plan
from ops.cli import app, output
from ops.errors import ExitCode, UsageError

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


@images_app.command("prune")
def prune_command(
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="Only say what would be removed."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask first."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Remove images ops made that nothing uses: build stages left behind, builds no profile names."""
    from ops.docker_engine import connect
    from ops.images import prune as pruning

    client = connect(timeout=120)
    found = pruning.survey(client)
    if not json_:
        _show(found)
    if dry_run or not found.images:
        if json_:
            output.emit_json(found)
        elif found.images:
            output.line(
                f"would free at least {_size(found.bytes)} ({len(found.images)} images); nothing removed"
            )
        return
    if not yes:
        if json_ or not sys.stdin.isatty():
            raise UsageError(
                f"not removing {len(found.images)} images without a confirmation",
                hint="run `ops images prune --yes`, or `--dry-run` to only list them",
            )
        if not typer.confirm(f"Remove these {len(found.images)} images?", default=False):
            output.note("nothing removed")
            raise typer.Exit(ExitCode.FAILURE)
    result = pruning.prune(client, found)
    if json_:
        output.emit_json(result)
    else:
        for item, reason in result.kept:
            output.note(f"kept {_name(item)}: {reason}")
        output.line(f"removed {len(result.removed)} images, freed at least {_size(result.bytes)}")
    if result.kept:
        raise typer.Exit(ExitCode.FAILURE)


def _show(found) -> None:
    if not found.images:
        output.line("nothing to remove: every image ops made is in use")
    else:
        table = Table("image", "recipe", "stage", "why", "frees", box=None, header_style="bold")
        for item in found.images:
            why = _WHY[item.reason]
            table.add_row(_name(item), item.recipe or "-", item.stage or "-", why, _size(item.bytes))
        output.out.print(table)
    if found.unreadable_profiles:
        output.note(
            f"builds are kept while a profile cannot be read ({', '.join(found.unreadable_profiles)}): "
            "it may name them; `ops validate` says what is wrong"
        )


_WHY = {
    "stage": "build stage left behind",
    "replaced-build": "replaced by a newer build",
    "unused-build": "no profile uses it",
}


def _name(item) -> str:
    return ", ".join(item.tags) or item.id.removeprefix("sha256:")[:12]


def _size(count: int) -> str:
    return f"{count / 1e9:.2f} GB" if count >= 1e8 else f"{count / 1e6:.0f} MB"
