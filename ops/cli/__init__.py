"""The ``ops`` command line. Only this package imports typer and rich.

Files mirror the command tree: ``ops/cli/up.py`` is ``ops up``. :func:`main` is the one
place that turns errors into exit codes: an :class:`~ops.errors.OpsError` becomes one red
line, its hint and its code; Ctrl-C exits 130; anything unexpected writes its (redacted)
traceback to the crash log and says where, or prints it with ``OPS_DEBUG=1``.
"""

from __future__ import annotations

import sys
import traceback

import typer

from ops import __version__
from ops.cli import output
from ops.errors import ExitCode, OpsError
from ops.private import append_private
from ops.secrets import redact
from ops.settings import Settings
from ops.state import crash_log

app = typer.Typer(
    name="ops",
    help="Bring up a private, on-device AI workshop with one command.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        output.line(f"ops {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    """Bring up a private, on-device AI workshop with one command."""


def _register() -> None:
    # Imported here so each command module can import `app` from this package.
    from ops.cli import (  # noqa: F401
        backup,
        bench,
        bench_backup,
        bench_classroom,
        bench_doctor,
        bench_gateway,
        bench_openwebui,
        bench_rag,
        bench_stub,
        bench_up,
        bench_webgpu,
        bundle,
        compare,
        credentials,
        doctor,
        down,
        endpoint,
        eval,
        export,
        host,
        images,
        keys,
        logs,
        model,
        open,
        participants,
        profiles,
        rag,
        restart,
        smoke,
        status,
        up,
        upgrade,
        usage,
        validate,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return (and exit with) its exit code."""
    _register()
    try:
        code = app(args=argv, standalone_mode=False)
        code = code if isinstance(code, int) else 0
    except OpsError as exc:
        output.error(exc)
        code = int(exc.exit_code)
    except typer.Exit as exc:
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        output.err.print("interrupted")
        code = ExitCode.INTERRUPTED
    except typer.TyperException as exc:  # typer's own usage errors (unknown command, bad option)
        # They are its vendored click's errors, which print themselves; the base class has no show().
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            typer.echo(f"Error: {exc.format_message()}", err=True)
        code = getattr(exc, "exit_code", ExitCode.USAGE)
    except Exception:  # the one catch-all: the user gets a path, not a traceback
        code = _crash()
    if argv is None:
        sys.exit(code)
    return int(code)


def _crash() -> int:
    text = redact(traceback.format_exc())
    settings = Settings.from_env()
    if settings.debug:
        output.err.print(text, markup=False)
        return ExitCode.FAILURE
    path = crash_log(settings)
    try:
        with append_private(path) as fh:  # 0600 in 0700 folders: tracebacks show paths and data
            fh.write(text + "\n")
        where = f"the traceback is in {path}"
    except OSError:
        where = "set OPS_DEBUG=1 to see the traceback"
    output.error(OpsError("unexpected internal error", hint=f"{where}; please report it"))
    return ExitCode.FAILURE
