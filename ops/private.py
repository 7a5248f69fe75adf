"""Private folders and files: everything ``ops`` keeps under its home is readable by its user only.

``Path.mkdir(parents=True, mode=0o700)`` applies the mode to the last folder only; the parents it
creates get the umask's default (0755). :func:`private_dir` creates every missing folder 0700 and
leaves folders that already existed as they are (they are the user's, not ours).

On Windows there are no POSIX modes (``chmod`` sets only the read-only flag) and no uids: there
folders and files are created without a mode, and :func:`tighten` does nothing. Files under the
user's profile (``%LOCALAPPDATA%``, where the home is by default) are private by the profile's ACL,
which gives them to that user (and SYSTEM and the Administrators) only and which new files inherit;
an ``OPS_HOME`` elsewhere gets the ACL of where it is.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO

DIR_MODE = 0o700
FILE_MODE = 0o600

#: ``os.open`` opens in the C runtime's text mode on Windows, which turns every newline written into
#: CR LF (on top of Python's own translation, for a text file) and stops reading at Ctrl-Z.
if sys.platform == "win32":
    O_BINARY = os.O_BINARY
else:
    O_BINARY = 0


def private_dir(path: Path) -> Path:
    """Create ``path`` and each missing parent with mode 0700 (whatever the umask); return ``path``."""
    missing: list[Path] = []
    here = path
    while not here.exists() and here != here.parent:
        missing.append(here)
        here = here.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:  # made meanwhile by another process: not ours to change
            continue
        if sys.platform != "win32":
            os.chmod(folder, DIR_MODE)  # the umask may have taken bits away; never adds any
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)  # raises the right error
    return path


def tighten(folder: Path) -> None:
    """Make ``folder`` 0700 if it is this user's and readable by others (POSIX; nothing on Windows)."""
    if sys.platform == "win32":
        return
    try:
        info = folder.stat()
        if info.st_uid == os.getuid() and info.st_mode & 0o077:
            os.chmod(folder, DIR_MODE)
    except OSError:
        pass


def open_private(path: Path, flags: int) -> int:
    """``os.open(path, flags)``, the file created 0600 if missing and made 0600 if wider (POSIX); binary.

    The mode is set before the caller writes, so nothing it writes is ever readable by others.
    """
    fd = os.open(path, flags | os.O_CREAT | O_BINARY, FILE_MODE)
    if sys.platform != "win32":
        try:
            os.fchmod(fd, FILE_MODE)  # an older file, or one the umask left wider
        except BaseException:
            os.close(fd)
            raise
    return fd


def append_private(path: Path) -> TextIO:
    """Open ``path`` for appending text, created 0600 (and made 0600 if an older version left it wider)."""
    private_dir(path.parent)
    fd = open_private(path, os.O_WRONLY | os.O_APPEND)
    try:
        return os.fdopen(fd, "a", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise
