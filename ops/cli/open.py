"""``ops open [PROFILE] [SERVICE]``: open a service in the browser, or print its URL."""

from __future__ import annotations

import os
import sys
import webbrowser

import typer

from ops import plan as stack_plan
from ops.cli import app, output
from ops.errors import UsageError


@app.command("open")
def open_command(
    profile: str = typer.Argument("workshop", help="Profile name or path."),
    service: str | None = typer.Argument(
        None, help="Service to open (default: the first with a published port), or `gateway`."
    ),
    print_: bool = typer.Option(False, "--print", help="Print the URL instead of opening a browser."),
) -> None:
    """Open SERVICE in the browser: its https URL on the exposed address (expose:), else on this machine."""
    plan = stack_plan.load(profile, ask_catalog=False)
    if service is None:
        service = next((n for n, s in plan.enabled.items() if s.ports), None)
        if service is None:
            raise UsageError(
                f"profile {plan.name} publishes no web app",
                hint=f"`ops open {profile} gateway` prints the gateway",
            )
    url = plan.public_url(service)
    if not url:
        raise UsageError(f"service {service} publishes no port", hint=f"add ports: to services.{service}")
    if print_:
        typer.echo(url)
        return
    why = _no_browser()
    if why is None and webbrowser.open(url):
        output.note(f"opened {url}", style="dim")
        return
    output.note(f"no browser to open here ({why or 'none found'}): open this URL yourself", style="dim")
    typer.echo(url)


def _no_browser() -> str | None:
    """Why no graphical browser can be opened from here, or ``None`` when one may be."""
    if sys.platform in ("win32", "darwin"):
        return None
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        # webbrowser would otherwise start a text browser (lynx, w3m) in this terminal.
        return "no DISPLAY"
    return None
