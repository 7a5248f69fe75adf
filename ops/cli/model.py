"""``ops model list|pull|add|load|unload``: the models on this machine and in a stack."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ops import profiles as lib
from ops.cli import app, output
from ops.cli.buildbar import build_bar, build_recipe
from ops.errors import UsageError
from ops.models import manage
from ops.models import recipes as recipes_lib
from ops.models.recipes import build as recipe_build
from ops.settings import Settings

model_app = typer.Typer(help="Models: the Foundry catalog, local folders, and what a stack has loaded.")
app.add_typer(model_app, name="model")


@model_app.command("list")
def list_command(
    profile: str = typer.Argument("workshop", help="Profile whose models to show with their state."),
    catalog: bool = typer.Option(True, "--catalog/--no-catalog", help="Also ask the Foundry catalog."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the profile's models (and their state in the running host), local registrations and the catalog."""
    settings = Settings.from_env()
    loaded = lib.load(profile)
    rows = manage.profile_rows(loaded, settings) + manage.local_rows(settings)
    note = "not asked (--no-catalog)"
    if catalog:
        catalog_rows, note = manage.catalog_rows(settings)
        rows += catalog_rows
    if json_:
        output.emit_json(manage.ModelListing(rows, note))
        return
    table = Table("where", "name", "id", "state", "detail", box=None, header_style="bold")
    for row in rows:
        table.add_row(row.where, row.name, row.id, row.state, row.detail)
    output.out.print(table)
    output.note(f"catalog: {note}", style="dim" if "answered" in note else "yellow")


@model_app.command("pull")
def pull_command(alias: str = typer.Argument(..., help="Foundry catalog alias, e.g. phi-4-mini.")) -> None:
    """Download a catalog model into the shared cache, with progress (an interrupted pull resumes)."""
    settings = Settings.from_env()
    manage.require_catalog(alias, settings)  # fail fast, before drawing a bar
    columns = (
        TextColumn(f"[bold]{alias}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=output.err) as bar:
        task = bar.add_task("download", total=1.0)
        model_id = manage.pull(alias, settings, lambda done: bar.update(task, completed=done))
    output.line(f"{alias}: {model_id} is in the cache")


@model_app.command("add")
def add_command(
    path: Path = typer.Argument(..., help="An ONNX Runtime GenAI model folder (with genai_config.json)."),
    alias: str = typer.Option(None, "--alias", help="Name to register it under (default: the folder name)."),
) -> None:
    """Register a local model folder with Foundry Local (bring your own model); idempotent."""
    row = manage.add(path, alias, Settings.from_env())
    output.line(f"{row.name}: registered as {row.id} ({row.detail})")
    output.line(f"use it in a profile:  models: {{{row.name}: {{path: {path.expanduser().resolve()}}}}}")


@model_app.command("load")
def load_command(
    alias: str = typer.Argument(..., help="Model alias in the profile."),
    profile: str = typer.Option("workshop", "--profile", "-p", help="Profile name or path."),
) -> None:
    """Load a model in the stack's running host."""
    card = manage.control(lib.load(profile), alias, "load", Settings.from_env())
    output.line(f"{card['id']}: ready" if card.get("ready") else f"{card['id']}: not ready")


@model_app.command("unload")
def unload_command(
    alias: str = typer.Argument(..., help="Model alias in the profile."),
    profile: str = typer.Option("workshop", "--profile", "-p", help="Profile name or path."),
) -> None:
    """Unload a model from the stack's running host, freeing its memory (requests get 503 until loaded)."""
    card = manage.control(lib.load(profile), alias, "unload", Settings.from_env())
    output.line(f"{card['id']}: unloaded")


@model_app.command("recipes")
def recipes_command(json_: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the model recipes ops can build here, their precisions, licence, and what is built."""
    rows = recipes_lib.listing(Settings.from_env().cache)
    if json_:
        output.emit_json(rows)
        return
    table = Table(
        "recipe", "parameters", "precisions", "licence", "built", "source", box=None, header_style="bold"
    )
    for row in rows:
        table.add_row(
            row.name,
            row.parameters,
            ", ".join(row.precisions),
            row.licence,
            ", ".join(row.built) or "-",
            row.source,
        )
    output.out.print(table)


@model_app.command("build")
def build_command(
    recipe: str = typer.Argument(None, help="Recipe name (`ops model recipes`); omit with --profile."),
    precision: str = typer.Option(
        None, "--precision", help="int4, int8, fp16 or fp32 (default: the recipe's)."
    ),
    profile: str = typer.Option(None, "--profile", "-p", help="Build every recipe model of this profile."),
    json_: bool = typer.Option(False, "--json", help="Print the result as JSON (progress goes to stderr)."),
) -> None:
    """Build a model from its recipe into the shared model cache (once; a second build is instant)."""
    settings = Settings.from_env()
    if (recipe is None) == (profile is None):
        raise UsageError(
            "give a recipe name or --profile",
            hint="e.g. `ops model build smollm2-135m-instruct --precision int4`",
        )
    if precision is not None and recipe is None:
        raise UsageError("--precision goes with a recipe name", hint="a profile names each model's precision")
    if recipe is not None:
        result = build_recipe(recipe, precision, settings.cache)
        results = {f"{result.recipe} {result.precision}": result}
    else:
        with build_bar() as for_model:
            results = recipe_build.ensure_models(lib.load(profile, settings), settings.cache, for_model)
    if json_:
        output.emit_json(results)
        return
    if not results:
        output.line(f"profile {profile} has no recipe models: nothing to build")
    for name, result in results.items():
        verb = f"built in {result.seconds:.1f} s" if result.built else "already built"
        output.line(f"{name}: {verb}, {result.size_bytes / 1e6:.0f} MB in {result.folder}")
