"""``ops backup [PROFILE]`` and ``ops restore FILE``: a stack's data in one checked archive, and back."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import typer
from rich.progress import DownloadColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ops import backup
from ops import plan as stack_plan
from ops.cli import app, output
from ops.errors import UsageError
from ops.state import check_stack_name

PASSPHRASE_ENV = "OPS_BACKUP_PASSPHRASE"
_PASSPHRASE_HINT = f"set {PASSPHRASE_ENV}, or give --passphrase-file FILE (its first line)"


def passphrase(file: Path | None, *, confirm: bool, required: bool) -> str | None:
    """The passphrase: ``$OPS_BACKUP_PASSPHRASE``, else ``file``'s first line, else asked on a terminal."""
    value = os.environ.get(PASSPHRASE_ENV)
    if value:
        return value
    if file is not None:
        try:
            value = file.read_text(encoding="utf-8").splitlines()[0] if file.stat().st_size else ""
        except OSError as exc:
            raise UsageError(
                f"cannot read the passphrase file {file}: {exc.strerror}", hint=_PASSPHRASE_HINT
            ) from None
        if not value:
            raise UsageError(
                f"the passphrase file {file} is empty", hint="write the passphrase on its first line"
            )
        return value
    if not required:
        return None
    if not sys.stdin.isatty():
        raise UsageError(
            "a passphrase is needed and there is no terminal to ask for it", hint=_PASSPHRASE_HINT
        )
    return str(typer.prompt("Backup passphrase", hide_input=True, confirmation_prompt=confirm))


@contextlib.contextmanager
def _bar() -> Iterator[Callable[[str, int], None]]:
    """A progress bar on stderr: bytes copied, per step."""
    columns = (SpinnerColumn(), TextColumn("{task.description}"), DownloadColumn(), TimeElapsedColumn())
    # Nothing but the bar on stderr: no redirection of stdout (the --json result goes there), and no
    # bar at all when stderr is not a terminal (logs and pipes get the notes only).
    bar = Progress(
        *columns,
        console=output.err,
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
        disable=not output.err.is_terminal,
    )
    with bar:
        tasks: dict[str, object] = {}

        def advance(description: str, count: int) -> None:
            if description not in tasks:
                tasks[description] = bar.add_task(description, total=None)
            bar.update(tasks[description], advance=count)  # type: ignore[arg-type]

        yield advance


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 100_000 else f"{count / 1e3:.1f} kB"


#: The options both commands take (one definition each).
_PASSPHRASE_FILE = typer.Option(
    None,
    "--passphrase-file",
    help=f"Read the passphrase from this file's first line (when ${PASSPHRASE_ENV} is not set).",
)
_JSON = typer.Option(False, "--json", help="Print the result as JSON (progress goes to stderr).")


@app.command("backup")
def backup_command(
    profile: str = typer.Argument("workshop", help="Profile name or path."),
    out: Path | None = typer.Option(
        None, "--output", "-o", help="Archive to write (default: <state>/backups/<stack>-<time>.backup.tgz)."
    ),
    no_secrets: bool = typer.Option(
        False, "--no-secrets", help="Leave the secrets out (no passphrase needed)."
    ),
    passphrase_file: Path | None = _PASSPHRASE_FILE,
    json_: bool = _JSON,
) -> None:
    """Back up the stack's volumes and state to one archive (secrets encrypted with a passphrase)."""
    plan = stack_plan.load(profile, ask_catalog=False)
    target = out if out is not None else backup.default_output(plan.name)
    if target.is_dir():
        target = target / backup.default_output(plan.name).name
    if target.exists():
        raise UsageError(f"{target} exists: a backup never overwrites a file", hint="give another -o FILE")
    if not target.parent.is_dir() and out is not None:
        raise UsageError(
            f"no folder {target.parent} for the archive", hint="create it, or give another -o FILE"
        )
    secret = passphrase(passphrase_file, confirm=True, required=not no_secrets)
    with _bar() as progress:
        report = backup.take(
            plan,
            target,
            secrets=not no_secrets,
            passphrase=secret,
            say=lambda text: output.note(f"  {text}", style="dim"),
            progress=progress,
        )
    if json_:
        output.emit_json(report)
        return
    output.line(f"backup of stack {report.stack} written to {report.path}", style="green")
    output.line(f"  {_size(report.size_bytes)} in {report.seconds:.1f} s; {len(report.volumes)} volume(s)")
    for copy in report.volumes:
        output.line(
            f"  volume {copy.name}: {_size(copy.bytes)}" + (f" ({copy.service})" if copy.service else "")
        )
    for service, seconds in report.paused.items():
        output.line(f"  {service}: paused {seconds:.2f} s for a consistent copy")
    if not report.paused:
        output.line("  no service was running: nothing was paused")
    output.line(
        "  secrets: included, encrypted with the passphrase"
        if report.secrets
        else "  secrets: left out (--no-secrets): a restore elsewhere needs this machine's secrets.json"
    )
    output.line(f"restore with `ops restore {report.path}`", style="dim")


@app.command("restore")
def restore_command(
    file: Path = typer.Argument(..., help="An archive `ops backup` wrote."),
    as_: str | None = typer.Option(None, "--as", help="Restore under this stack name instead."),
    force: bool = typer.Option(False, "--force", help="Replace a stack's data (backed up first)."),
    passphrase_file: Path | None = _PASSPHRASE_FILE,
    json_: bool = _JSON,
) -> None:
    """Restore a backup into an empty stack (verified whole first: a bad archive changes nothing)."""
    if as_ is not None:
        check_stack_name(as_)
    if not file.is_file():
        raise UsageError(f"no archive at {file}", hint="give the path of a file `ops backup` wrote")
    secret = passphrase(passphrase_file, confirm=False, required=backup.needs_passphrase(file))
    with _bar() as progress:
        report = backup.restore(
            file,
            passphrase=secret,
            as_name=as_,
            force=force,
            say=lambda text: output.note(f"  {text}", style="dim"),
            progress=progress,
        )
    for warning in report.warnings:
        output.note(f"note: {warning}")
    if json_:
        output.emit_json(report)
        return
    if report.safety_backup:
        output.line(f"what stack {report.stack} held before is in {report.safety_backup}")
    output.line(
        f"stack {report.stack} restored from {report.archive.name} in {report.seconds:.1f} s", style="green"
    )
    for name in report.volumes:
        output.line(f"  volume {name}")
    output.line(f"  secrets: {'restored' if report.secrets == 'restored' else 'not in the archive: kept'}")
    if report.kept_files:
        output.line(f"  kept this machine's {', '.join(report.kept_files)} (newer than the archive's)")
    output.line(f"next: {report.next_step}", style="bold")
