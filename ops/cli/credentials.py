"""``ops credentials [PROFILE]``: the admin's sign-ins and where the gateway's key is (secrets, on request)."""

from __future__ import annotations

import json
import sys

import typer

from ops.cli import app, output
from ops.cli.stackkey import load_with_key
from ops.exposure import GATEWAY
from ops.secrets import Secret
from ops.stack import GATEWAY_KEY

NOTICE = "these are secrets: do not share or project this screen"


@app.command("credentials")
def credentials_command(
    profile: str = typer.Argument("workshop", help="Profile name or path."),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show the admin's sign-in to each service, and the gateway's URL and where its key is kept."""
    plan, state, key = load_with_key(profile, "credentials")
    ctx = plan.wiring(state.secrets, key)
    from dataclasses import replace

    services = []
    for name, service in plan.enabled.items():
        if service.kind.credentials is None:
            continue
        sign_in = service.kind.credentials(replace(ctx, service=name))
        services.append(
            {
                "service": name,
                "url": plan.public_url(name),
                "local_url": service.url,
                # Deliberately revealed: showing them is what this command is for.
                **{k: v.reveal() if isinstance(v, Secret) else v for k, v in sign_in.items()},
            }
        )
    gateway = {
        "base_url": plan.public_url(GATEWAY),
        "local_base_url": plan.gateway.url,
        "key_file": str(state.secrets.path),
        "key_name": GATEWAY_KEY,
    }
    output.note(NOTICE)
    if json_:
        # Written raw, past the redacting output helpers.
        sys.stdout.write(json.dumps({"services": services, "gateway": gateway}, indent=2) + "\n")
        return
    for entry in services:
        typer.echo(entry["service"])
        for label, value in entry.items():
            if label != "service" and value:
                typer.echo(f"  {label:<10} {value}")
    typer.echo("gateway")
    typer.echo(f"  base URL   {gateway['base_url']}")
    if gateway["local_base_url"] != gateway["base_url"]:
        typer.echo(f"  local URL  {gateway['local_base_url']}")
    typer.echo(
        f"  key        stored in {gateway['key_file']} (entry {GATEWAY_KEY!r}; `ops endpoint {plan.name} --show-key`)"
    )
