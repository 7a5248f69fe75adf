"""The one error root of ``ops`` and its exit codes.

Every failure a user can cause or fix is an :class:`OpsError` with a one-line
message, a hint that says what to do, and an exit code. The CLI catches it once
and prints it; nothing else prints tracebacks.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, stable and documented in the README."""

    OK = 0
    FAILURE = 1  # something checked failed (doctor, smoke) or an unexpected error
    USAGE = 2  # bad input: profile, arguments, paths
    DOCKER = 3  # Docker daemon unreachable or refused
    MODEL = 4  # model provider or model host problem
    TIMEOUT = 5  # a readiness probe timed out
    CONFLICT = 6  # a port or lock held by someone else
    INTERRUPTED = 130  # Ctrl-C


class OpsError(Exception):
    """Base for every error ``ops`` reports to a user.

    ``message`` is one line saying what is wrong; ``hint`` says how to fix it.
    """

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, hint: str | None = None, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = ExitCode(exit_code)

    def __str__(self) -> str:
        return self.message


class UsageError(OpsError):
    """Bad arguments or paths given on the command line."""

    exit_code = ExitCode.USAGE


class ProfileError(OpsError):
    """A profile that cannot be read or is invalid; names file, line and field."""

    exit_code = ExitCode.USAGE


class DockerError(OpsError):
    """The Docker daemon cannot be reached or refused an operation."""

    exit_code = ExitCode.DOCKER


class ModelError(OpsError):
    """A model cannot be found, registered, downloaded or loaded."""

    exit_code = ExitCode.MODEL


class ModelUnavailable(ModelError):
    """A model that is simply not available here (a cloud route without its key): not a failure."""


class ProbeTimeout(OpsError):
    """A readiness probe did not pass in time; ``evidence`` holds log lines to show with it."""

    exit_code = ExitCode.TIMEOUT
    evidence: list[str] = []


class Interrupted(OpsError):
    """Ctrl-C ended a command that changes things; the message says what it left and the hint what to do."""

    exit_code = ExitCode.INTERRUPTED


class ConflictError(OpsError):
    """A resource (port, lock) is held by something else."""

    exit_code = ExitCode.CONFLICT
