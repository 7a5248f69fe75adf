"""``ops rag ingest PROFILE [PATH]...``: add documents to the Chainlit RAG app's library and re-index it."""

from __future__ import annotations

from pathlib import Path

import typer

from ops import profiles as lib
from ops import rag
from ops.cli import app, output

rag_app = typer.Typer(help="The Chainlit RAG app's document library.", no_args_is_help=True)
app.add_typer(rag_app, name="rag")


@rag_app.command("ingest")
def ingest_command(
    profile: str = typer.Argument("workshop", help="Profile name or path."),
    paths: list[Path] = typer.Argument(None, help="Files or folders to copy into the library first."),
    remove: list[str] = typer.Option(None, "--remove", help="Delete this file of the library (repeatable)."),
    service: str = typer.Option(
        None, "--service", help="The RAG service (Chainlit), if the profile has several."
    ),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Copy documents in (optional), then index new, changed and deleted files (by content hash)."""
    loaded = lib.load(profile)
    report = rag.ingest(loaded, paths or [], remove or [], service)
    if json_:
        output.emit_json(report)
        return
    for name in report.copied:
        output.line(f"copied   {name}")
    for name in report.removed:
        output.line(f"removed  {name}")
    output.line(
        f"{report.service}: {len(report.added)} added, {len(report.changed)} changed, "
        f"{len(report.deleted)} deleted, {report.unchanged} unchanged, {len(report.skipped)} skipped "
        f"-> {report.documents} documents, {report.chunks} passages "
        f"({report.embedder or 'keyword search only'}; {report.seconds:.1f} s)"
    )
    for item in report.skipped:
        output.note(f"skipped  {item.path}: {item.reason}")
