"""``ops validate PROFILE``: check a profile and list every problem with its fix."""

from __future__ import annotations

import typer

from ops import profiles as lib
from ops.cli import app, output
from ops.errors import ExitCode, ProfileError
from ops.profiles.errors import ProfileInvalid


@app.command("validate")
def validate_command(
    profile: str = typer.Argument(..., help="Profile name (e.g. workshop) or path to a YAML file."),
    json_: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Check PROFILE without starting anything; exit 2 when it has problems."""
    try:
        loaded = lib.load(profile)
    except ProfileInvalid as exc:
        if json_:
            output.emit_json({"ok": False, "problems": exc.problems})
        else:
            for problem in exc.problems:
                output.err.print(f"[bold red]error:[/] {output.escape(str(problem))}")
                output.err.print(f"[dim]hint:[/] {output.escape(problem.hint)}")
        raise typer.Exit(ExitCode.USAGE) from None
    except ProfileError as exc:
        if not json_:
            raise
        output.emit_json({"ok": False, "problems": [{"message": exc.message, "hint": exc.hint}]})
        raise typer.Exit(ExitCode.USAGE) from None
    p = loaded.profile
    if json_:
        output.emit_json(
            {
                "ok": True,
                "stack": loaded.name,
                "path": loaded.path,
                "models": {alias: spec.model_dump() for alias, spec in p.models.items()},
                "services": sorted(p.services),
                "volumes": sorted(p.volumes),
                "participants": list(p.participants.roster) if p.participants else [],
                "expose": p.expose.address if p.expose else None,
            }
        )
        return
    output.line(f"{loaded.path}: ok", style="green")
    output.line(f"  stack     {loaded.name}")
    output.line(f"  models    {', '.join(f'{a} ({s.source})' for a, s in p.models.items())}")
    output.line(f"  gateway   {', '.join(p.gateway.bind)} port {p.gateway.port}")
    output.line(f"  services  {', '.join(p.services) or 'none'}")
    output.line(f"  volumes   {', '.join(p.volumes) or 'none'}")
    if p.participants:
        roster = p.participants.roster
        quota = p.participants.tokens_per_hour
        output.line(
            f"  people    {len(roster)} participants ({roster[0]}..{roster[-1]})"
            + (f", {quota:,} tokens an hour each" if quota else "")
        )
    output.line(
        f"  room      {'https on ' + p.expose.address if p.expose else 'not exposed (127.0.0.1 only)'}"
    )
