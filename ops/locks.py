"""An exclusive lock between processes, on a file that is created 0600 if needed.

``filelock`` takes ``flock`` on Linux and macOS and ``LockFileEx`` on Windows. A lock file stays
in place on POSIX (waiters share its inode); on Windows filelock deletes it on release.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

from ops.private import FILE_MODE, private_dir


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (its folder is created 0700) until the block ends.

    Blocks until the lock is free, however long. Two ``file_lock`` blocks on one path exclude each
    other in different processes and in different threads of one process alike (each call opens the
    file anew), and a thread that nests two on one path waits for itself for ever, as with ``flock``.
    """
    private_dir(path.parent)
    # fallback_to_soft=False: on a file system without flock, fail as flock itself would rather
    # than switch to marker files that a crashed holder leaves behind.
    with FileLock(path, mode=FILE_MODE, fallback_to_soft=False):
        yield
