"""Starting a host right after the last one died: its port may be held a moment longer by its last threads."""

from __future__ import annotations

import socket
import threading

import pytest

from ops.errors import ConflictError
from ops.host.process import _check_free_after_a_death


def listening() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


def test_a_port_released_a_moment_later_is_waited_for():
    held, port = listening()
    threading.Timer(0.5, held.close).start()  # the dead host's last thread lets go
    _check_free_after_a_death(["127.0.0.1"], port, timeout=5)


def test_a_port_still_held_after_the_wait_is_the_usual_conflict():
    held, port = listening()
    try:
        with pytest.raises(ConflictError, match=f"port {port} on 127.0.0.1 is already in use"):
            _check_free_after_a_death(["127.0.0.1"], port, timeout=0.5)
    finally:
        held.close()
