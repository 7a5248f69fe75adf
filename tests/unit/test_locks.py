"""``ops.locks.file_lock``: exclusive and blocking between processes and threads; 0600 file, 0700 folders."""

from __future__ import annotations

import os
import queue
import stat
import subprocess
import sys
import threading
import time

from ops.locks import file_lock

# Prints "waiting", takes the lock, prints "acquired", holds it until its stdin closes.
CHILD = """
import sys
from pathlib import Path
from ops.locks import file_lock
print("waiting", flush=True)
with file_lock(Path(sys.argv[1])):
    print("acquired", flush=True)
    sys.stdin.read()
"""


def child(lock) -> tuple[subprocess.Popen, queue.Queue[str]]:
    """The child, and the lines it prints as they come."""
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    return process, lines


def test_a_process_waits_while_another_holds_the_lock(tmp_path):
    lock = tmp_path / "locks" / "a.lock"
    with file_lock(lock):
        other, lines = child(lock)
        try:
            assert lines.get(timeout=30) == "waiting\n"
            try:
                early = lines.get(timeout=1.0)
            except queue.Empty:
                early = None
            assert early is None  # not "acquired" while this process holds the lock
        finally:
            other.stdin.close()  # once it has the lock, it lets go at once
    try:
        assert lines.get(timeout=30) == "acquired\n"  # after this process let go
        assert other.wait(timeout=30) == 0
    finally:
        other.kill()


def test_this_process_waits_while_another_holds_the_lock(tmp_path):
    lock = tmp_path / "b.lock"
    other, lines = child(lock)
    try:
        assert lines.get(timeout=30) == "waiting\n"
        assert lines.get(timeout=30) == "acquired\n"
        got = threading.Event()

        def take() -> None:
            with file_lock(lock):
                got.set()

        taker = threading.Thread(target=take, daemon=True)
        taker.start()
        assert not got.wait(1.0)
        other.stdin.close()
        assert got.wait(10.0)
        assert other.wait(timeout=30) == 0
    finally:
        other.kill()


def test_threads_of_one_process_exclude_each_other(tmp_path):
    lock = tmp_path / "c.lock"
    inside = []
    overlaps = []

    def work() -> None:
        for _ in range(5):
            with file_lock(lock):
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(len(inside))
                time.sleep(0.01)
                inside.pop()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert overlaps == []


def test_the_lock_file_is_0600_in_0700_folders_whatever_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        lock = tmp_path / "new" / "deeper" / "d.lock"
        with file_lock(lock):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600  # it stays in place on POSIX
    assert stat.S_IMODE(lock.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(lock.parent.parent.stat().st_mode) == 0o700
