"""A progress bar for recipe builds, shared by ``ops model build`` and ``ops up``: one bar per model,
the step's number and name beside it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ops.cli import output
from ops.models import recipes
from ops.models.recipes import build as recipe_build
from ops.models.recipes.build import BuildResult


@contextlib.contextmanager
def build_bar() -> Iterator[Callable[[str], Callable[[int, int, str], None]]]:
    """Yield ``for_model(label)``, which gives the progress callback of that model's build."""
    columns = (
        TextColumn("[bold]{task.fields[label]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=output.err, transient=False) as bar:

        def for_model(label: str) -> Callable[[int, int, str], None]:
            task = None

            def update(number: int, total: int, name: str) -> None:
                nonlocal task
                if task is None:
                    task = bar.add_task(name, total=total, label=label)
                # A step that starts is not done: the bar counts the steps finished before it.
                done = number if name in ("already built", "install into the model cache") else number - 1
                bar.update(task, completed=done, total=total, description=name)

            return update

        yield for_model


def build_recipe(name: str, precision: str | None, cache: Path) -> BuildResult:
    """Build recipe ``name`` at ``precision`` (its default when ``None``) with a bar, or find it built."""
    chosen = recipes.get(name)
    chosen_precision = chosen.check_precision(precision)
    with build_bar() as for_model:
        return recipe_build.build(
            chosen, chosen_precision, cache, for_model(f"{chosen.name} {chosen_precision}")
        )
