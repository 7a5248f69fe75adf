"""``ops.procs``: a detached child and asking it to stop, per platform.

On Linux for real; the Windows branches run here with Windows' constants and ``subprocess``
calls faked (their types are checked by ``mypy --platform win32`` in ``just lint``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from ops import procs

CREATE_NEW_PROCESS_GROUP, CREATE_NO_WINDOW, DETACHED_PROCESS = 0x200, 0x8000000, 0x8


def test_on_posix_the_child_has_its_own_session_and_stops_on_sigterm(tmp_path):
    assert procs.detached_options() == {"start_new_session": True}
    assert procs.STOP_SIGNALS == (signal.SIGTERM,)
    code = "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *_: sys.exit(7))\nprint('up', flush=True)\ntime.sleep(60)"
    with (tmp_path / "out").open("wb") as out:
        child = procs.start_python(["-c", code], os.environ, out)
    try:
        deadline = time.monotonic() + 30
        while (tmp_path / "out").read_text() != "up\n" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.getsid(child.pid) == child.pid != os.getsid(0)  # a session of its own
        assert procs.ask_to_stop(psutil.Process(child.pid)) is True
        assert child.wait(10) == 7  # its SIGTERM handler ran: asked, not killed
    finally:
        child.kill()


@pytest.fixture
def windows(monkeypatch):
    """This process as Windows: its platform, subprocess's constants, a venv's two interpreters."""
    monkeypatch.setattr(sys, "platform", "win32")
    for name, value in [
        ("CREATE_NEW_PROCESS_GROUP", CREATE_NEW_PROCESS_GROUP),
        ("CREATE_NO_WINDOW", CREATE_NO_WINDOW),
        ("DETACHED_PROCESS", DETACHED_PROCESS),
    ]:
        monkeypatch.setattr(subprocess, name, value, raising=False)
    monkeypatch.setattr(sys, "executable", r"C:\ws\.venv\Scripts\python.exe")
    monkeypatch.setattr(sys, "_base_executable", r"C:\Python311\python.exe", raising=False)


def test_on_windows_the_child_gets_a_group_and_a_console_of_its_own(windows):
    assert procs.detached_options() == {"creationflags": CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW}


def test_on_windows_a_venv_child_is_the_base_interpreter_told_its_venv(windows):
    command, extra = procs.python_command("-m", "ops")
    assert command == [r"C:\Python311\python.exe", "-m", "ops"]
    assert extra == {"__PYVENV_LAUNCHER__": r"C:\ws\.venv\Scripts\python.exe"}


def test_on_windows_asking_sends_ctrl_break_from_a_helper(windows, monkeypatch):
    calls = []

    def run(command, **options):
        calls.append((command, options))
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(subprocess, "run", run)
    assert procs.ask_to_stop(psutil.Process()) is True
    ((command, options),) = calls
    assert command[0] == r"C:\Python311\python.exe" and command[1] == "-c"
    assert "ctrl_break_from_here" in command[2] and command[3] == str(os.getpid())
    assert options["creationflags"] == DETACHED_PROCESS
    assert options["env"]["__PYVENV_LAUNCHER__"] == r"C:\ws\.venv\Scripts\python.exe"

    monkeypatch.setattr(subprocess, "run", lambda command, **_: subprocess.CompletedProcess(command, 1))
    assert procs.ask_to_stop(psutil.Process()) is False  # the caller then kills at once


def test_the_helper_refuses_off_windows():
    with pytest.raises(SystemExit, match="Windows only"):
        procs.ctrl_break_from_here(os.getpid())
