"""``ops bench-backup [PROFILE]``: backup, restore and (``--bundle``) bundle-to-ready, on a copy of a profile."""

from __future__ import annotations

import typer

from ops.cli import app, output


@app.command("bench-backup")
def backup_command(
    profile: str = typer.Argument(
        "workshop", help="Profile to measure (a copy of it runs under its own name)."
    ),
    participants: int = typer.Option(20, "--participants", min=0, help="Open WebUI accounts to make first."),
    documents: int = typer.Option(1000, "--documents", min=0, help="Documents in the RAG library (if any)."),
    bundle: bool = typer.Option(False, "--bundle", help="Also: bundle create, bundle load, up from it."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Backup and restore time, archive size, the pause Open WebUI sees, and (--bundle) bundle to ready."""
    from ops.bench import backup

    result = backup.run(
        profile, participants, documents, bundle, say=lambda text: output.note(text, style="dim")
    )
    if json_:
        output.emit_json(result)
        return
    mb = 1e6
    output.line(
        f"profile {result.profile} as stack {result.stack}: {result.participants} participants, "
        f"{result.documents} documents"
    )
    output.line(
        f"up (first, with accounts)    {result.setup_s:7.1f} s; library indexed in {result.ingest_s:.1f} s"
    )
    volumes = ", ".join(f"{k} {v / mb:.1f} MB" for k, v in result.volume_bytes.items())
    output.line(
        f"ops backup                   {result.backup_s:7.2f} s   archive {result.archive_bytes / mb:.1f} MB ({volumes})"
    )
    for service, seconds in result.paused_s.items():
        output.line(f"  {service:<26} paused {seconds:.2f} s")
    output.line(
        f"Open WebUI's slowest answer   {result.longest_answer_during_ms:7.0f} ms during the backup "
        f"({result.probes_during} probes), {result.longest_answer_before_ms:.0f} ms before"
    )
    output.line(f"ops restore                  {result.restore_s:7.2f} s")
    output.line(
        f"ops up after restore         {result.up_after_restore_s:7.1f} s   accounts "
        f"{result.accounts_after_restore} of {result.accounts_before} found again"
    )
    if bundle:
        output.line(
            f"ops bundle create            {result.bundle_create_s:7.1f} s   {result.bundle_bytes / 1e9:.2f} GB"
        )
        total = result.bundle_load_s + result.up_from_bundle_s
        output.line(
            f"ops bundle load + ops up     {result.bundle_load_s:7.1f} s + {result.up_from_bundle_s:.1f} s "
            f"= {total:.1f} s (goal < 120 s; this engine already held the images' layers)"
        )
