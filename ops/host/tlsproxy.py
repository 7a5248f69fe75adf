"""TLS in front of the stack's loopback ports, on the exposed LAN address, inside the model host.

Each listener of the stack's exposure (:class:`ops.exposure.Listener`) is a TLS server socket on
``ADDRESS:PORT`` that forwards the decrypted bytes to ``127.0.0.1:PORT``, where Docker publishes
the service (or the gateway listens). It is TCP underneath, so HTTP keep-alive, server-sent
events and WebSockets (Open WebUI's and Chainlit's Socket.IO) pass through unchanged.

Why here rather than a reverse-proxy container: the host already runs for as long as the stack
does (``ops down`` stops it, and the listeners with it), it binds only the named address (a
container's published port is Docker's, and a container on the host network could bind
anything), and it needs no image. Why not TLS in uvicorn: the services are not uvicorn, and one
mechanism for all ports keeps the certificate in one place.

Connections from the room reach the loopback ports from :data:`SOURCE` (127.0.0.2), not
127.0.0.1, where the system allows it (Linux): the gateway can tell the room from this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import ssl
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ops.host import ports

if TYPE_CHECKING:
    from ops.host.config import HostExposure

log = logging.getLogger("ops.host.tls")

#: The loopback address connections from the room come from (where it can be bound).
SOURCE = "127.0.0.2"
CHUNK = 64 * 1024
#: Seconds a client has to finish the TLS handshake; a plain-http client is dropped at once.
HANDSHAKE_TIMEOUT = 10.0
CONNECT_TIMEOUT = 10.0
#: Connections (handshakes included) the listeners hold at once, and of one client address: each
#: takes two file descriptors of the model host, which also runs the gateway. A room of 30 browsers
#: keeps a few each per port (6 at most per origin, and a WebSocket); past a cap a new one is closed.
MAX_CONNECTIONS = 512
MAX_PER_CLIENT = 64


def server_context(certificate: str, key: str) -> ssl.SSLContext:
    """TLS 1.2 or newer with the stack's certificate chain; HTTP/1.1 only (the ports behind are HTTP/1.1)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certificate, key)
    context.set_alpn_protocols(["http/1.1"])
    return context


@dataclass
class TlsProxy:
    """Running TLS listeners: made by :func:`start`, ended by :meth:`stop`."""

    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    servers: list[asyncio.base_events.Server] = field(default_factory=list)
    #: Open connections by client address (the event loop's thread only).
    clients: Counter[str] = field(default_factory=Counter)
    max_connections: int = MAX_CONNECTIONS
    max_per_client: int = MAX_PER_CLIENT
    refused: int = 0

    def admit(self, client: str) -> bool:
        """Count a new connection from ``client`` in, unless a cap is reached (then count it refused)."""
        if self.clients.total() >= self.max_connections or self.clients[client] >= self.max_per_client:
            if self.refused == 0:
                log.warning(
                    "TLS listener: %d connections open (%d from %s): new ones closed until some end",
                    self.clients.total(),
                    self.clients[client],
                    client,
                )
            self.refused += 1
            return False
        self.clients[client] += 1
        return True

    def leave(self, client: str) -> None:
        """A connection from ``client`` ended."""
        self.clients[client] -= 1
        if self.clients[client] <= 0:
            del self.clients[client]
        if not self.clients:
            self.refused = 0

    def stop(self) -> None:
        """Close the listeners and every connection through them; wait for the thread."""

        async def close() -> None:
            for server in self.servers:
                server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self.loop.is_running():
            with contextlib.suppress(RuntimeError):
                asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=5)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def start(address: str, listeners: list[tuple[int, str, int]], certificate: str, key: str) -> TlsProxy:
    """Bind ``address:port`` for each ``(port, target_host, target_port)`` (a busy port raises
    :class:`~ops.errors.ConflictError` naming its holder, nothing left bound), then serve them in a
    thread of their own."""
    context = server_context(certificate, key)
    sockets: list[socket.socket] = []
    try:
        for port, _host, _port in listeners:
            sockets += ports.bind([address], port)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    proxy = TlsProxy(loop, threading.Thread(target=loop.run_forever, name="tls-proxy", daemon=True))

    async def serve() -> None:
        for sock, (port, host, target_port) in zip(sockets, listeners, strict=True):
            # Plain TCP accepted, TLS started per connection once it is counted: the caps then bound
            # handshakes too, which the handshake timeout bounds in time.
            server = await asyncio.start_server(
                functools.partial(
                    _connection, proxy, context, host=host, port=target_port, source=_source(host)
                ),
                sock=sock,
            )
            proxy.servers.append(server)
            log.info("TLS on %s:%d -> %s:%d", address, port, host, target_port)
        ready.set()

    proxy.thread.start()
    asyncio.run_coroutine_threadsafe(serve(), loop).result(timeout=30)
    ready.wait(5)
    return proxy


def _source(host: str) -> tuple[str, int] | None:
    """Bind outgoing connections to :data:`SOURCE` when the target is IPv4 loopback and the system lets us."""
    if host != "127.0.0.1":
        return None
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((SOURCE, 0))
    except OSError:
        return None  # macOS has only 127.0.0.1 unless aliased: the room then looks like this machine
    return (SOURCE, 0)


async def _connection(
    proxy: TlsProxy,
    context: ssl.SSLContext,
    client_r: asyncio.StreamReader,
    client_w: asyncio.StreamWriter,
    host: str,
    port: int,
    source: tuple[str, int] | None,
) -> None:
    """One client: counted against the caps, its TLS handshake within :data:`HANDSHAKE_TIMEOUT`, forwarded."""
    peer = client_w.get_extra_info("peername")
    client = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
    if not proxy.admit(client):
        client_w.transport.abort()
        return
    try:
        try:
            await client_w.start_tls(context, ssl_handshake_timeout=HANDSHAKE_TIMEOUT)
        except (ssl.SSLError, ConnectionError, OSError, TimeoutError):
            client_w.transport.abort()  # plain http, an untrusting client, or too slow a handshake
            return
        await _forward(client_r, client_w, host, port, source)
    finally:
        proxy.leave(client)


async def _forward(
    client_r: asyncio.StreamReader,
    client_w: asyncio.StreamWriter,
    host: str,
    port: int,
    source: tuple[str, int] | None,
) -> None:
    try:
        upstream_r, upstream_w = await asyncio.wait_for(
            asyncio.open_connection(host, port, local_addr=source), CONNECT_TIMEOUT
        )
    except (OSError, TimeoutError) as exc:
        log.warning("TLS listener: %s:%d does not answer (%s)", host, port, exc)
        client_w.close()
        return
    sock = upstream_w.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        await asyncio.gather(_pipe(client_r, upstream_w), _pipe(upstream_r, client_w))
    finally:
        for writer in (upstream_w, client_w):
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then pass the end on (half-close where the transport can)."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        else:
            writer.close()
    except (ConnectionError, ssl.SSLError, OSError):
        writer.close()


def run(expose: HostExposure | None) -> TlsProxy | None:
    """The host's listeners for ``expose`` (see :func:`start`), or ``None`` without an exposure."""
    if expose is None:
        return None
    return start(expose.address, list(expose.listeners), expose.certificate, expose.key)
