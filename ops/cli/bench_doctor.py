"""``ops bench-doctor [PROFILE]``: a full ``ops doctor`` on a healthy stack, and with the network a black hole."""

from __future__ import annotations

import typer

from ops.cli import app, output


@app.command("bench-doctor")
def doctor_command(
    profile: str = typer.Argument(
        "workshop", help="Profile to measure (brought up, and down unless --keep)."
    ),
    runs: int = typer.Option(5, "--runs", min=1, help="Runs per condition."),
    keep: bool = typer.Option(False, "--keep", help="Leave the stack up afterwards."),
) -> None:
    """Time `ops doctor` as a CLI process and in-process, healthy and with catalog and index a black hole."""
    from ops.bench import doctor
    from ops.bench.stats import median

    timings = doctor.run(profile, runs, keep, say=lambda text: output.note(f"  {text}", style="dim"))
    goals = {"healthy": 2.0}
    output.line(f"ops doctor {profile}: {runs} runs per condition (seconds)")
    output.line(
        f"{'condition':<30} {'CLI p50':>8} {'CLI max':>8} {'checks p50':>11}  result            slowest check"
    )
    for t in timings:
        goal = goals.get(t.condition, 5.0)
        result = ", ".join(f"{n} {s}" for s, n in t.summary.items() if n)
        output.line(
            f"{t.condition:<30} {median(t.cli):8.2f} {max(t.cli):8.2f} {median(t.in_process):11.2f}  "
            f"{result:<17} {t.slowest[0]} {t.slowest[1]:.2f} s   (goal < {goal:g} s)"
        )
        if t.not_ok:
            output.line(f"{'':<30} not ok: {', '.join(t.not_ok)}")
