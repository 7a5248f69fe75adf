"""``ops bench-up [PROFILE]``: warm ``ops up`` against starting the same containers directly."""

from __future__ import annotations

import typer

from ops.cli import app, output


@app.command("bench-up")
def up_command(
    profile: str = typer.Argument("offline", help="Profile to measure (brought up and down several times)."),
    runs: int = typer.Option(3, "--runs", min=1),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Warm `ops up` from stopped to ready vs starting the same containers directly; re-run and status times."""
    from ops.bench import up

    result = up.run(profile, runs, say=lambda text: output.note(text, style="dim"))
    if json_:
        output.emit_json({**result.__dict__, "ratio": result.ratio})
        return
    output.line(f"profile {result.profile}, medians of {result.runs} runs")
    output.line(f"warm ops up, stopped -> ready   {result.warm_up_s:6.2f} s")
    output.line(
        f"lower bound (SDK, parallel)    {result.lower_bound_s:6.2f} s   ratio {result.ratio:.2f} (goal <= 1.2)"
    )
    output.line(f"no-change re-run               {result.rerun_s:6.2f} s   (goal < 1.5 s)")
    output.line(f"ops status                     {result.status_s:6.2f} s   (goal < 0.5 s)")
