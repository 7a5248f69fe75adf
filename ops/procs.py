"""A detached child process, per platform: start one that outlives the terminal, ask it to stop.

``ops up`` starts the model host in the background; ``ops down`` (or the next ``ops up``), from
any terminal, asks it to stop, so it shuts its gateway down, unloads its models and removes its
pid file; only a host that has not stopped in time is killed. Every difference between platforms
in that is here.

* **POSIX**: the child gets a session of its own (``start_new_session``), so the terminal's
  Ctrl-C and hang-up never reach it. Asking is SIGTERM.
* **Windows** has no sessions, and no SIGTERM between processes: psutil's SIGTERM is
  ``TerminateProcess``, an instant kill. The child is created with ``CREATE_NEW_PROCESS_GROUP |
  CREATE_NO_WINDOW``. ``CREATE_NO_WINDOW`` gives it a console of its own without a window: closing
  the terminal that ran ``ops up`` does not end it, and the console programs it runs open no window
  either. ``CREATE_NEW_PROCESS_GROUP`` makes its pid a process group, so Ctrl+Break can be sent to it
  alone (and the group ignores Ctrl-C). Python turns Ctrl+Break into SIGBREAK, which uvicorn handles
  as it handles SIGTERM. ``DETACHED_PROCESS`` was not chosen: a process without a console receives
  no console event at all, so it could only ever be killed (and each console program it started
  would open a window). Ctrl+Break reaches only processes attached to the sender's console, so
  :func:`ask_to_stop` runs a short helper (this interpreter) that attaches to the child's console
  and sends it there.
* **A virtual environment on Windows**: its ``python.exe`` is a redirector that runs the base
  interpreter as a child of its own, so the pid ``Popen`` returns would not be the host's, which
  writes its own pid into the pid file. As :mod:`multiprocessing` does, the base interpreter is
  started directly and told the environment through ``__PYVENV_LAUNCHER__``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from typing import IO, Any

import psutil

#: The signals by which a child started with :func:`start_python` is asked to stop.
STOP_SIGNALS: tuple[signal.Signals, ...]
if sys.platform == "win32":
    STOP_SIGNALS = (signal.SIGTERM, signal.SIGBREAK)
else:
    STOP_SIGNALS = (signal.SIGTERM,)

#: Seconds the Windows helper that sends Ctrl+Break may take (it starts an interpreter).
HELPER_TIMEOUT = 30.0


def python_command(*args: str) -> tuple[list[str], dict[str, str]]:
    """``[python, *args]`` that runs this interpreter (and environment) in a child, and the variables it needs."""
    if sys.platform == "win32":
        base = getattr(sys, "_base_executable", sys.executable)
        if os.path.normcase(base) != os.path.normcase(sys.executable):
            return [base, *args], {"__PYVENV_LAUNCHER__": sys.executable}
    return [sys.executable, *args], {}


def detached_options() -> dict[str, Any]:
    """Keyword arguments for ``subprocess.Popen`` that detach the child from this terminal."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW}
    return {"start_new_session": True}


def start_python(args: list[str], env: Mapping[str, str], output: IO[bytes]) -> subprocess.Popen:
    """Start ``python *args`` detached (see the module), its stdout and stderr into ``output``."""
    command, extra = python_command(*args)
    return subprocess.Popen(
        command,
        env={**env, **extra},
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        **detached_options(),
    )


def ask_to_stop(process: psutil.Process) -> bool:
    """Ask ``process`` (started by :func:`start_python`) to stop; False when the request could not be sent.

    The caller waits for it and kills it when it has not stopped in time (or at once on False).
    """
    if sys.platform == "win32":
        return _ctrl_break(process.pid)
    process.send_signal(signal.SIGTERM)
    return True


def _ctrl_break(pid: int) -> bool:
    """Send Ctrl+Break to process group ``pid`` from a helper attached to its console."""
    code = "import sys; from ops.procs import ctrl_break_from_here; ctrl_break_from_here(int(sys.argv[1]))"
    command, extra = python_command("-c", code, str(pid))
    options: dict[str, Any] = {}
    if sys.platform == "win32":
        # No console of its own: it attaches to the child's (a process has at most one).
        options["creationflags"] = subprocess.DETACHED_PROCESS
    try:
        done = subprocess.run(
            command,
            env={**os.environ, **extra},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=HELPER_TIMEOUT,
            check=False,
            **options,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def ctrl_break_from_here(pid: int) -> None:
    """In the helper: attach to the console of ``pid`` and send Ctrl+Break to its process group.

    Runs in a process of its own because it leaves this process's console for the child's.
    Exits non-zero (with the reason) when it cannot.
    """
    if sys.platform != "win32":
        raise SystemExit("Ctrl+Break is sent on Windows only")
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel32.FreeConsole()
    if not kernel32.AttachConsole(pid):
        raise SystemExit(
            f"cannot attach to the console of pid {pid}: {ctypes.WinError(ctypes.get_last_error())}"
        )
    # GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, pid): the group whose id is pid, not this helper.
    os.kill(pid, signal.CTRL_BREAK_EVENT)
