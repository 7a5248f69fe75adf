"""Ctrl-C during a long wait: every wait of ``ops up`` stops within a moment, in every thread.

Python delivers SIGINT to the main thread only. The threads that wait for a container's probe or
for the model host would go on waiting, and the main thread, leaving its thread pools, would wait
for them (an interrupt took effect only when the current wait ended). While :func:`watching` is
active, SIGINT also sets :data:`REQUESTED`; :func:`sleep`, the sleep every wait uses between two
checks, raises :class:`Cancelled` as soon as it is set, and :func:`check` before a new step.

On Windows a wait without a timeout (a thread's join, ``Future.result()``) cannot be interrupted:
the SIGINT handler runs only once it ends, so the other threads would not be told either. The
main thread waits for other threads' work with :func:`as_completed` or :func:`wait`, in slices.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import signal
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from types import FrameType

#: Set by Ctrl-C while :func:`watching`; cleared when the watch ends.
REQUESTED = threading.Event()
#: Seconds the main thread waits at a time in :func:`as_completed` (so Ctrl-C gets through on Windows).
SLICE = 0.2


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


def as_completed(futures: Iterable[Future]) -> Iterator[Future]:
    """``concurrent.futures.as_completed``, waiting in slices so that Ctrl-C interrupts it on Windows too."""
    pending = set(futures)
    while pending:
        try:
            for future in concurrent.futures.as_completed(pending, timeout=SLICE):
                pending.discard(future)
                yield future
        except concurrent.futures.TimeoutError:
            continue


def wait(futures: Iterable[Future]) -> None:
    """Return when every future is done (see :func:`as_completed`)."""
    for _ in as_completed(futures):
        pass


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
