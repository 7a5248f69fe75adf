"""Private folders and files: everything ``ops`` keeps under its home is readable by its user only.

``Path.mkdir(parents=True, mode=0o700)`` applies the mode to the last folder only; the parents it
creates get the umask's default (0755). :func:`private_dir` creates every missing folder 0700 and
leaves folders that already existed as they are (they are the user's, not ours).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

DIR_MODE = 0o700
FILE_MODE = 0o600


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
        os.chmod(folder, DIR_MODE)  # the umask may have taken bits away; never adds any
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)  # raises the right error
    return path


def tighten(folder: Path) -> None:
    """Make ``folder`` 0700 if it is this user's and readable by others."""
    try:
        info = folder.stat()
        if info.st_uid == os.getuid() and info.st_mode & 0o077:
            os.chmod(folder, DIR_MODE)
    except OSError:
        pass


def append_private(path: Path) -> TextIO:
    """Open ``path`` for appending text, created 0600 (and made 0600 if an older version left it wider)."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, "a", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise
