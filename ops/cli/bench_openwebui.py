"""``ops bench-openwebui [PROFILE]``: a participant's wait in Open WebUI, its background generations on vs off."""

from __future__ import annotations

import typer

from ops.cli import app, output


@app.command("bench-openwebui")
def openwebui_command(
    profile: str = typer.Argument(
        "offline", help="Profile name or YAML path (brought up, and down unless --keep)."
    ),
    messages: int = typer.Option(5, "--messages", min=1, help="Messages per condition."),
    model: str = typer.Option(None, "--model", help="Chat model alias (default: the first local one)."),
    pause: float = typer.Option(
        0.0, "--pause", min=0, help="Seconds between an answer and the next message."
    ),
    keep: bool = typer.Option(False, "--keep", help="Leave the stack up afterwards."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Time first text and complete answer in Open WebUI (Chromium), background generations on vs off."""
    from ops.bench import openwebui_wait

    result = openwebui_wait.run(
        profile, messages, model, keep, pause, say=lambda text: output.note(f"  {text}", style="dim")
    )
    if json_:
        output.emit_json(result)
        return
    for text in openwebui_wait.render(result).splitlines():
        output.line(text)
