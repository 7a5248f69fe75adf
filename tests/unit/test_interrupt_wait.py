"""``ops.interrupt.as_completed`` / ``wait``: the main thread's waits for other threads, in slices.

The slices are for Windows, where a wait without a timeout holds Ctrl-C back until it ends; here
they must behave as ``concurrent.futures.as_completed`` does, and a SIGINT must end them at once.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import threading
import time

import pytest

from ops import interrupt


def test_futures_come_in_the_order_they_finish_across_slices():
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        futures = {pool.submit(time.sleep, s): s for s in (0.7, 0.1, 0.45)}  # longer than a slice
        order = [futures[f] for f in interrupt.as_completed(futures)]
    assert order == [0.1, 0.45, 0.7]


def test_ctrl_c_ends_the_wait_at_once():
    release = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(release.wait, 30)
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        started = time.monotonic()
        try:
            with pytest.raises(KeyboardInterrupt), interrupt.watching():
                interrupt.wait([future])
        finally:
            release.set()
    assert time.monotonic() - started < 2.0
