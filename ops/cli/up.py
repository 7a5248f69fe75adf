"""``ops up PROFILE``: bring the stack up, or say exactly why not."""

from __future__ import annotations

import typer

from ops import lifecycle, services
from ops import plan as stack_plan
from ops.cli import app, output
from ops.cli.buildbar import build_bar


@app.command("up")
def up_command(
    profile: str = typer.Argument("workshop", help="Profile name (e.g. workshop) or path to a YAML file."),
    timeout: float = typer.Option(900, help="Seconds to wait for the models to load."),
    json_: bool = typer.Option(False, "--json", help="Print the report as JSON (progress goes to stderr)."),
) -> None:
    """Bring the stack of PROFILE up: models and gateway on the host, services in Docker; idempotent."""
    plan = stack_plan.load(profile)
    output.note(f"stack {plan.name} from {plan.path}", style="bold")
    with build_bar() as for_model:
        report = lifecycle.up(
            plan,
            say=lambda text: output.note(f"  {text}", style="dim"),
            host_timeout=timeout,
            build_progress=lambda alias: for_model(f"model {alias}"),
        )
    if json_:
        output.emit_json(report)
        return
    if not report.changed:
        output.line("nothing changed: everything was already up and unchanged", style="green")
    output.line(f"gateway   {report.gateway_url}  (key: `ops endpoint {report.stack}`)")
    for service in report.services:
        output.line(f"{service.service:<9} {service.url or '(no published port)'}")
    if report.exposed and report.authority is not None:
        output.line("open to the room over TLS (expose:)", style="bold")
        for name, url in report.exposed.items():
            output.line(f"  {name:<9} {url}")
        output.line(f"  CA        {report.authority.certificate} (Windows/macOS: {report.authority.der})")
        output.line(f"  CA SHA-256 {report.authority.fingerprint}")
    if any(services.has_feature(s.kind, services.SIGN_IN) for s in report.services):
        output.line(f"sign-in   `ops credentials {report.stack}` shows them (kept in {report.secrets_file})")
    output.line(f"ready in {report.seconds:.1f} s", style="green")
