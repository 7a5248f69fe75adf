"""``ops logs PROFILE [SERVICE] [--follow]``: a container's log, or the model host's (SERVICE ``host``)."""

from __future__ import annotations

import sys
import time

import typer

from ops import profiles as lib
from ops import reconcile
from ops.cli import app, output
from ops.errors import UsageError
from ops.state import StackState


@app.command("logs")
def logs_command(
    profile: str = typer.Argument("workshop", help="Profile name or path."),
    service: str = typer.Argument("host", help="A service of the profile, or `host` for the model host."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines (Ctrl-C stops)."),
    tail: int = typer.Option(100, "--tail", help="Lines from the end to start with."),
) -> None:
    """Print the last lines of a service's log (the model host's when SERVICE is `host`)."""
    loaded = lib.load(profile)
    if service == "host":
        _host_log(StackState.for_stack(loaded.name).log_file, tail, follow)
        return
    from ops.docker_engine import connect

    found = reconcile.containers(connect(), loaded.name)
    if service not in found:
        known = ", ".join(["host", *sorted(found)])
        raise UsageError(f"stack {loaded.name} has no running service {service!r}", hint=f"services: {known}")
    container = found[service]
    if follow:
        for chunk in container.logs(stream=True, follow=True, tail=tail):
            sys.stdout.write(chunk.decode("utf-8", "replace"))
            sys.stdout.flush()
    else:
        sys.stdout.write(container.logs(tail=tail).decode("utf-8", "replace"))


def _host_log(path, tail: int, follow: bool) -> None:
    if not path.exists():
        output.note(f"no host log yet ({path})")
        return
    with path.open(encoding="utf-8", errors="replace") as fh:
        for text in fh.readlines()[-tail:]:
            sys.stdout.write(text)
        while follow:
            text = fh.readline()
            if text:
                sys.stdout.write(text)
                sys.stdout.flush()
            else:
                time.sleep(0.2)  # following a file: there is nothing to retry, only to wait for
