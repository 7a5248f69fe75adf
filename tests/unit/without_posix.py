"""Run ``ops`` as Windows would let it: its own code gets none of Python's POSIX-only parts.

Run by ``test_portable.py`` as a script, in a fresh interpreter: ``python without_posix.py OUT.json``.
Before anything of ``ops`` is imported it replaces ``builtins.__import__`` so that a module of the
``ops`` package (and only one: the importer's ``__name__`` decides)

* cannot import ``fcntl``, ``resource``, ``termios``, ``pwd``, ``grp`` and the other POSIX-only
  standard modules (``ModuleNotFoundError``, as on Windows);
* gets an ``os`` without the POSIX-only functions and flags (``os.getuid`` is an AttributeError,
  ``from os import getuid`` an ImportError), and a ``signal`` with only what Windows has.

Third-party packages and the standard library are left alone: they keep their own platform
branches, which check ``sys.platform`` (still ``linux`` here) and so take the Linux ones. Hiding
the modules and functions from everyone was tried and rejected for that reason: on Linux psutil's
backend imports ``resource``, filelock without ``fcntl`` falls back to soft locks, and the standard
``subprocess`` needs ``os.WIFSTOPPED``; on Windows each takes a branch of its own instead.

A module of ``ops`` therefore imports a POSIX-only module inside the ``sys.platform`` branch that
uses it, never at the top: it cannot be told from an unguarded import here, where ``sys.platform``
says ``linux``.

Then it imports every module of ``ops``, runs ``--help`` of every command and subcommand and
``ops validate`` on every shipped profile, and writes what failed (and a check that the guard
itself bites) to OUT.json.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import os
import pkgutil
import signal
import sys
import traceback
import types

#: Standard modules that exist on POSIX systems only.
BLOCKED_MODULES = frozenset(
    {"fcntl", "resource", "termios", "pwd", "grp", "tty", "pty", "posix", "syslog", "crypt", "spwd", "nis"}
)
#: ``os`` names that Windows lacks (Python 3.11), functions and the flags code picks with getattr.
POSIX_ONLY_OS = frozenset(
    """
    getuid geteuid getgid getegid getgroups setuid setgid seteuid setegid setreuid setregid
    getresuid getresgid setresuid setresgid initgroups getgrouplist setgroups
    fchmod fchown chown lchown chroot
    getloadavg killpg getpgid setpgid getpgrp setpgrp setsid getsid tcgetpgrp tcsetpgrp
    fork forkpty register_at_fork wait wait3 wait4 waitid
    WIFEXITED WEXITSTATUS WIFSIGNALED WTERMSIG WIFSTOPPED WSTOPSIG WNOHANG
    sync fdatasync sysconf pathconf fpathconf confstr statvfs fstatvfs uname nice getpriority
    setpriority sched_getaffinity sched_setaffinity sched_yield sched_getscheduler sched_param
    mkfifo mknod major minor makedev openpty ttyname ctermid
    posix_spawn posix_spawnp posix_fadvise posix_fallocate pread pwrite preadv pwritev sendfile
    readv writev lockf pipe2 get_blocking set_blocking
    getxattr setxattr listxattr removexattr memfd_create eventfd splice copy_file_range
    O_NOFOLLOW O_NONBLOCK O_CLOEXEC O_DIRECTORY O_SYNC O_DSYNC O_RSYNC O_NOCTTY O_NDELAY O_ASYNC
    O_DIRECT O_LARGEFILE O_NOATIME O_PATH O_TMPFILE
    """.split()  # noqa: SIM905 - a list of words reads better than a hundred quoted names
)
#: Everything ``signal`` has on Windows (and Linux too: SIGBREAK and CTRL_* are Windows-only).
WINDOWS_SIGNAL = frozenset(
    """
    SIGABRT SIGFPE SIGILL SIGINT SIGSEGV SIGTERM NSIG SIG_DFL SIG_IGN Signals Handlers
    default_int_handler getsignal signal raise_signal set_wakeup_fd strsignal valid_signals
    """.split()  # noqa: SIM905 - a list of words reads better than a hundred quoted names
)
#: Modules of ``ops`` not imported here, each with the reason.
NOT_IMPORTED = {
    "ops.__main__": "importing it runs the CLI (python -m ops); every command's --help below runs that code",
}


def _ours(importer_globals: dict | None) -> bool:
    name = (importer_globals or {}).get("__name__") or ""
    return name == "ops" or name.startswith("ops.")


def _stripped(module: types.ModuleType, keep) -> types.ModuleType:
    copy = types.ModuleType(module.__name__, module.__doc__)
    copy.__dict__.update({k: v for k, v in vars(module).items() if keep(k)})
    return copy


def install() -> None:
    """From now on, modules of ``ops`` import as on Windows (see the module's docstring)."""
    windows_os = _stripped(os, lambda name: name not in POSIX_ONLY_OS)
    windows_signal = _stripped(signal, lambda name: name.startswith("_") or name in WINDOWS_SIGNAL)
    real_import = builtins.__import__

    def guarded(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and _ours(globals):
            top = name.partition(".")[0]
            if top in BLOCKED_MODULES:
                raise ModuleNotFoundError(
                    f"No module named {name!r} (POSIX only; imported by {globals['__name__']})", name=name
                )
            if name == "os" or (top == "os" and not fromlist):
                real_import(name, globals, locals, fromlist, level)
                return windows_os
            if name == "signal":
                return windows_signal
        return real_import(name, globals, locals, fromlist, level)

    builtins.__import__ = guarded


def guard_bites() -> dict[str, bool]:
    """The guard itself: each probe is True when it behaved as on Windows."""

    def fails(code: str, importer: str, error: type[Exception]) -> bool:
        try:
            exec(code, {"__name__": importer})
        except error:
            return True
        return False

    return {
        "ops module cannot import fcntl": fails("import fcntl", "ops.probe", ImportError),
        "ops module cannot call os.getuid": fails("import os\nos.getuid", "ops.probe", AttributeError),
        "ops module cannot import os.fchmod": fails("from os import fchmod", "ops.probe", ImportError),
        "ops module has no signal.SIGKILL": fails(
            "import signal\nsignal.SIGKILL", "ops.probe", AttributeError
        ),
        "other modules keep fcntl": not fails("import fcntl", "elsewhere", ImportError),
        "other modules keep os.getuid": not fails("import os\nos.getuid", "elsewhere", AttributeError),
    }


def import_everything() -> tuple[list[str], dict[str, str]]:
    """Import every module of ``ops``; (the names imported, name -> the error of each that failed)."""
    import ops

    names = sorted(m.name for m in pkgutil.walk_packages(ops.__path__, "ops.", onerror=lambda _: None))
    failed = {}
    for name in names:
        if name in NOT_IMPORTED:
            continue
        try:
            __import__(name)
        except BaseException as exc:  # SystemExit too: a module must not exit on import
            failed[name] = "".join(traceback.format_exception_only(exc)).strip()
    return names, failed


def command_paths() -> list[list[str]]:
    """Every command and subcommand of the CLI, as the words that name it."""
    import typer.main

    from ops.cli import _register, app

    _register()

    def walk(command, path: list[str]):
        yield path
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, [*path, name])

    return list(walk(typer.main.get_command(app), []))


def run_cli(args: list[str]) -> tuple[int, str]:
    """``ops ARGS`` in this process: (exit code, what it printed)."""
    from ops.cli import main

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        try:
            code = main(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = -1
    return code, printed.getvalue()


def main() -> None:
    """Guard, then try everything; write the findings as JSON to ``sys.argv[1]``."""
    install()
    names, failed = import_everything()
    helps = {}
    for path in command_paths():
        code, text = run_cli([*path, "--help"])
        helps[" ".join(path) or "(ops)"] = {"code": code, "tail": text[-2000:] if code else ""}
    from ops.paths import shipped

    profiles = {}
    for profile in sorted(shipped("profiles").glob("*.yaml")):
        code, text = run_cli(["validate", str(profile)])
        profiles[profile.name] = {"code": code, "tail": text[-2000:] if code else ""}
    result = {
        "guard": guard_bites(),
        "modules": names,
        "not_imported": NOT_IMPORTED,
        "import_failures": failed,
        "help": helps,
        "validate": profiles,
    }
    with open(sys.argv[1], "w", encoding="utf-8") as out:
        json.dump(result, out, indent=1)


if __name__ == "__main__":
    main()
