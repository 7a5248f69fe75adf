"""Ctrl-C during a long wait: every wait of ``ops up`` stops within a moment, in every thread.

Python delivers SIGINT to the main thread only. The threads that wait for a container's probe or
for the model host would go on waiting, and the main thread, leaving its thread pools, would wait
for them (an interrupt took effect only when the current wait ended). While :func:`watching` is
active, SIGINT also sets :data:`REQUESTED`; :func:`sleep`, the sleep every wait uses between two
checks, raises :class:`Cancelled` as soon as it is set, and :func:`check` before a new step.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

#: Set by Ctrl-C while :func:`watching`; cleared when the watch ends.
REQUESTED = threading.Event()


class Cancelled(Exception):
    """A wait or step given up because the user pressed Ctrl-C (the main thread has the KeyboardInterrupt)."""


def sleep(seconds: float) -> None:
    """Sleep ``seconds``, or raise :class:`Cancelled` at once when Ctrl-C is pressed meanwhile."""
    if REQUESTED.wait(seconds):
        raise Cancelled("interrupted")


def check() -> None:
    """Raise :class:`Cancelled` if Ctrl-C was pressed: call before starting something new."""
    if REQUESTED.is_set():
        raise Cancelled("interrupted")


@contextlib.contextmanager
def watching() -> Iterator[None]:
    """Within the block, Ctrl-C both raises KeyboardInterrupt in the main thread and cancels every wait."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    REQUESTED.clear()
    previous = signal.getsignal(signal.SIGINT)

    def interrupted(signum: int, frame: FrameType | None) -> None:
        REQUESTED.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        # The threads that waited have ended by now (their pools were shut down inside the block):
        # waits after it, in a process that goes on (a test session), are not cancelled.
        REQUESTED.clear()
