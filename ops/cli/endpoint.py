"""``ops endpoint PROFILE``: where clients point, and where the key is kept."""

from __future__ import annotations

import typer

from ops.cli import app, output
from ops.cli.stackkey import load_with_key
from ops.stack import GATEWAY_KEY


@app.command("endpoint")
def endpoint_command(
    profile: str = typer.Argument("workshop", help="Profile name or path."),
    show_key: bool = typer.Option(False, "--show-key", help="Also print the key itself."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print the gateway's base URL and where its key is stored (the key only with --show-key)."""
    plan, state, key = load_with_key(profile)
    result = {
        "base_url": plan.gateway.url,
        "container_base_url": plan.gateway.container_url,
        "key_file": str(state.secrets.path),
        "key_name": GATEWAY_KEY,
    }
    if show_key:
        # Deliberately revealed: the user asked for it. Written raw, past the redacting output helpers.
        result["key"] = key.reveal()
    if json_:
        import json
        import sys

        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    output.line(f"base URL         {result['base_url']}")
    output.line(f"from containers  {result['container_base_url']}")
    output.line(f"key              stored in {result['key_file']} (entry {GATEWAY_KEY!r})")
    if show_key:
        typer.echo(f"key value        {key.reveal()}")
