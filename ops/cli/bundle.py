"""``ops bundle create [PROFILE] -o FILE`` and ``ops bundle load FILE``: a profile carried offline."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from ops import plan as stack_plan
from ops.cli import app, output

bundle_app = typer.Typer(help="Carry a profile to a machine with no network: images, models, wheels.")
app.add_typer(bundle_app, name="bundle")


class _Bar:
    """The library's meter as a rich progress bar on stderr: one bar per phase."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.task: TaskID | None = None

    def phase(self, label: str, total: int | None) -> None:
        if self.task is not None:
            self.progress.update(self.task, total=self.progress.tasks[self.task].completed)
        self.task = self.progress.add_task(label, total=total or None)

    def advance(self, count: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, count)


@contextlib.contextmanager
def _bar(json_: bool) -> Iterator[_Bar]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
    )
    with Progress(
        *columns, console=output.err, transient=False, disable=json_ or not output.err.is_terminal
    ) as progress:
        yield _Bar(progress)


@bundle_app.command("create")
def create_command(
    profile: str = typer.Argument("workshop", help="Profile name or path."),
    out: Path = typer.Option(..., "--output", "-o", help="The bundle file to write (must not exist)."),
    gzip: bool = typer.Option(False, "--gzip", help="Compress (smaller by about a third, much slower)."),
    no_wheels: bool = typer.Option(
        False, "--no-wheels", help="Leave out the wheels of ops and its dependencies."
    ),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Write everything PROFILE needs offline: service images, built models, the wheels of ops."""
    from ops.bundle.create import create
    from ops.cli.buildbar import build_bar

    plan = stack_plan.load(profile, ask_catalog=False)
    say = (lambda _line: None) if json_ else (lambda line: output.note(f"  {line}", style="dim"))
    with build_bar() as for_model, _bar(json_) as bar:
        result = create(
            plan,
            out,
            compress=gzip,
            include_wheels=not no_wheels,
            say=say,
            meter=bar,
            build_progress=None if json_ else for_model,
        )
    if json_:
        output.emit_json({**dataclasses.asdict(result), "bootstrap": result.bootstrap})
        return
    output.line(f"wrote {result.path} ({result.bytes / 1e9:.2f} GB) in {result.seconds:.0f} s")
    for image in result.images:
        output.line(f"  image {image.tag}" + (f" (recipe {image.recipe})" if image.recipe else ""))
    for model in result.models:
        output.line(f"  model {model.alias}: {model.folder} ({model.bytes / 1e6:.0f} MB)")
    if result.wheels:
        output.line(f"  {len(result.wheels)} wheels (ops and its dependencies)")
    for left in result.left_out:
        output.note(f"  left out: {left.what}: {left.reason}")
    output.line(f"on the offline machine: ops bundle load {result.path.name}")
    if result.wheels:
        output.line(f"on a machine without ops: {result.bootstrap}")


@bundle_app.command("load")
def load_command(
    file: Path = typer.Argument(..., help="A bundle written by `ops bundle create`."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Verify FILE whole, then load its images, models and wheels: `ops up` then builds nothing."""
    from ops.bundle.load import load

    say = (lambda _line: None) if json_ else (lambda line: output.note(f"  {line}", style="dim"))
    with _bar(json_) as bar:
        result = load(file, say=say, meter=bar)
    if json_:
        output.emit_json(result)
        return
    output.line(f"loaded {result.path.name} (profile {result.profile}) in {result.seconds:.0f} s")
    for tag in result.images:
        output.line(f"  image {tag}")
    for folder in result.models:
        output.line(f"  model {folder}")
    for folder in result.models_kept:
        output.line(f"  model {folder} (was there already)")
    for left in result.left_out:
        output.note(f"  not in the bundle: {left.get('what')}: {left.get('reason')}")
    for warning in result.warnings:
        output.note(f"  warning: {warning}")
    if result.wheelhouse:
        output.line(f"  wheels in {result.wheelhouse}; on a fresh machine: {result.install_command}")
    output.line(f"next: {result.up_command}")
