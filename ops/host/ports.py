"""Binding the gateway's sockets, and naming whoever holds a busy port."""

from __future__ import annotations

import errno
import ipaddress
import socket
import sys

import psutil

from ops.errors import ConflictError


def holder(port: int) -> str | None:
    """``name (pid N)`` of the process listening on ``port``, when it can be found."""
    try:
        connections = psutil.net_connections(kind="inet")
    except (psutil.AccessDenied, PermissionError):
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            try:
                return f"{psutil.Process(conn.pid).name()} (pid {conn.pid})"
            except psutil.Error:
                return f"pid {conn.pid}"
    return None


def bind(addresses: list[str], port: int) -> list[socket.socket]:
    """Listening sockets on every address, or a :class:`ConflictError` naming the holder; none left open."""
    sockets: list[socket.socket] = []
    try:
        for address in addresses:
            family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
            # proto must be IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say so, and
            # without it Nagle plus delayed ACKs add ~40 ms to every response.
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sockets.append(sock)
            if sys.platform != "win32":
                # On Windows SO_REUSEADDR would let this socket bind a port another one listens
                # on (so a busy port would go unnoticed); asyncio, too, sets it on POSIX only.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((address, port))
            except OSError as exc:
                raise _conflict(address, port, exc) from None
            sock.listen(512)
            sock.set_inheritable(True)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def check_free(addresses: list[str], port: int) -> None:
    """Raise :class:`ConflictError` if ``port`` cannot be bound on every address."""
    for sock in bind(addresses, port):
        sock.close()


def _conflict(address: str, port: int, exc: OSError) -> ConflictError:
    if exc.errno == errno.EADDRINUSE:
        who = holder(port)
        by = f" by {who}" if who else ""
        return ConflictError(
            f"port {port} on {address} is already in use{by}",
            hint="stop that process, or set another `gateway.port` in the profile",
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return ConflictError(
            f"cannot listen on {address}:{port}: this machine has no such address",
            hint="fix `gateway.bind` in the profile (use 127.0.0.1 or stack-gateway)",
        )
    if exc.errno == errno.EACCES:
        return ConflictError(f"no permission to listen on {address}:{port}", hint="use a port above 1023")
    return ConflictError(f"cannot listen on {address}:{port}: {exc.strerror}", hint="check `gateway.bind`")
