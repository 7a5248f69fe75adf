"""The gateway's HTTP protocol: uvicorn's httptools protocol with a connection cap and read deadlines.

uvicorn (0.54) reads a request for as long as the client likes: ``timeout_keep_alive`` runs only
*between* requests, so a socket that sends half a request line, or a head and then one body byte
a minute, holds its connection (and a file descriptor) for ever, without a key. Its
``limit_concurrency`` counts such connections but acts only once a head is complete, so it makes a
stall *cheaper* (each stalled socket takes a slot) rather than bounding it, and answers in plain text.

:class:`GuardedProtocol` adds, per connection:

* a **head deadline**: the request line and headers must be complete within ``head_timeout``
  seconds of the connection opening (or of the previous response ending, on a kept-alive one);
* a **body deadline**: the body must be complete within ``body_timeout`` seconds of its head;
* a **head size limit** (``MAX_HEAD_BYTES``), since httptools itself has none;
* a **connection cap**, ``max_connections`` open connections, so stalled sockets cannot take every
  file descriptor. When it is reached, a new connection makes room by closing the oldest one that
  has not sent a complete request head (a stalled or idle one); only when every connection is busy
  with a request is the new one answered 503 and closed. A client that sends its request at once
  is served however many sockets stall. One client address may hold at most half the cap (each
  container has its own address on the stack's network).

A deadline answers 408 and closes (silently if the client had not begun a request); every answer the protocol writes itself (408, 431, 503 and the
parser's 400) is JSON in OpenAI's error shape.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from http import HTTPStatus
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("ops.gateway")

#: Request line plus headers; Open WebUI's heads are under 2 KB, nginx's default buffers allow 32 KB.
MAX_HEAD_BYTES = 64 * 1024
#: File descriptors kept for everything but client connections: upstream connections, model files, logs.
FD_RESERVE = 256


def error_bytes(status: int, message: str, code: str, kind: str = "invalid_request_error") -> bytes:
    """A complete ``Connection: close`` HTTP/1.1 response with an OpenAI-shaped JSON error."""
    body = json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with read deadlines, a head size limit and a connection cap."""

    head_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000
    _last_refusal_log: float = float("-inf")
    #: Open connections by client address (one dict per configured class, i.e. per server).
    _by_client: dict[str, int] = {}
    #: Connections waiting for a request head, oldest first (one dict per configured class).
    _pending: dict[GuardedProtocol, None] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._counted: str | None = None
        self._in_head = False
        self._head_bytes = 0
        self._head_done = False

    @classmethod
    def configured(
        cls, head_timeout: float, body_timeout: float, max_connections: int
    ) -> type[GuardedProtocol]:
        """A subclass with these limits (uvicorn builds protocols from a class)."""

        class Configured(cls):  # type: ignore[valid-type,misc]
            pass

        Configured.head_timeout, Configured.body_timeout = head_timeout, body_timeout
        Configured.max_connections = max_connections
        Configured._by_client, Configured._pending = {}, {}
        return Configured

    @property
    def max_per_client(self) -> int:
        """Connections one client address may hold: half the cap."""
        return max(1, self.max_connections // 2)

    # -- the timer -------------------------------------------------------------------------------

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired, what)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, what: str) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        seconds = self.head_timeout if what == "head" else self.body_timeout
        message = f"request {what} not received within {seconds:g} s"
        self._refuse(408, message, "request_timeout", what, quiet_if_idle=True)

    def _refuse(
        self, status: int, message: str, code: str, waiting: str = "head", quiet_if_idle: bool = False
    ) -> None:
        """Answer ``status`` (unless a response is under way) and close the connection.

        ``waiting`` is what the connection waits for: a request's ``head`` (the current cycle, if
        any, is the previous request's) or its ``body`` (the current cycle is this request's).
        ``quiet_if_idle``: say nothing to a client that has not begun a request (as for keep-alive).
        """
        cycle = self.cycle
        if waiting == "head":
            answer = (cycle is None or cycle.response_complete) and (self._in_head or not quiet_if_idle)
        else:
            answer = cycle is None or not cycle.response_started
        if answer:
            self.transport.write(error_bytes(status, message, code))
        if cycle is not None:
            # The application sees a disconnect and writes nothing more to this transport.
            cycle.disconnected = True
            cycle.message_event.set()
        self._disarm()
        self.transport.close()

    # -- uvicorn's hooks -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        address = self.client[0] if self.client else ""
        if self._by_client.get(address, 0) >= self.max_per_client:
            self._turn_away(f"{address} has {self.max_per_client} connections open, half the gateway's")
            return
        if len(self.connections) > self.max_connections:
            oldest = next(iter(self._pending), None)
            if oldest is None:
                self._turn_away(f"the gateway has {self.max_connections} requests under way")
                return
            oldest._evict()
        self._by_client[address] = self._by_client.get(address, 0) + 1
        self._counted = address
        self._pending[self] = None
        self._arm(self.head_timeout, "head")

    def _log_refusal(self, why: str) -> None:
        now = self.loop.time()
        if now - GuardedProtocol._last_refusal_log > 60:  # one line a minute, not one per socket
            GuardedProtocol._last_refusal_log = now
            log.warning("connections refused or closed (gateway.max_connections): %s", why)

    def _turn_away(self, why: str) -> None:
        self.connections.discard(self)
        self._log_refusal(why)
        self._refuse(503, why, "too_many_connections")

    def _evict(self) -> None:
        """Close this connection, which has sent no complete head, to make room for a new one."""
        why = f"{self.max_connections} connections open: the oldest without a complete request closed"
        self._pending.pop(self, None)
        self.connections.discard(self)
        self._log_refusal(why)
        self._refuse(503, why, "too_many_connections", quiet_if_idle=True)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._pending.pop(self, None)
        if self._counted is not None:
            left = self._by_client.get(self._counted, 1) - 1
            if left > 0:
                self._by_client[self._counted] = left
            else:
                self._by_client.pop(self._counted, None)
            self._counted = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self.transport.is_closing():
            super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes, self._head_done, self._in_head = 0, False, True
        if self._deadline is None:
            self._arm(self.head_timeout, "head")

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            # httptools stops parsing and raises HttpParserCallbackError: send_400_response answers.
            raise ValueError("request head too large")

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_done, self._in_head = True, False
        self._pending.pop(self, None)
        self._arm(self.body_timeout, "body")
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        if self._head_done:
            self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Waiting for the next request on a kept-alive connection: its head has a deadline too
        # (uvicorn's keep-alive timer stops at the first byte, even a lone CRLF).
        waiting = self.cycle is None or self.cycle.response_complete
        if waiting and self._deadline is None and not self.transport.is_closing():
            self._arm(self.timeout_keep_alive + self.head_timeout, "head")
            self._pending[self] = None  # idle: the first to close when room is needed

    def send_400_response(self, msg: str) -> None:
        if self._head_bytes > MAX_HEAD_BYTES:
            self._refuse(431, f"request line and headers over {MAX_HEAD_BYTES} bytes", "request_too_large")
        else:
            self._refuse(400, f"malformed HTTP request: {msg}", "bad_request")


def connection_budget(wanted: int) -> int:
    """How many client connections this process can hold: ``wanted``, raising the soft fd limit if need be.

    Each connection is a file descriptor; the soft ``RLIMIT_NOFILE`` is often 1024 on a desktop
    (systemd sets the hard limit far higher). Past the limit ``accept()`` fails (EMFILE) and the
    gateway could not open upstream connections either, so the cap stays ``FD_RESERVE`` below it.

    Windows has no such limit (``resource`` is POSIX-only): a socket there is a kernel handle, of
    which a process may hold about 16 million, and uvicorn's event loop there (asyncio's proactor,
    on I/O completion ports) has no ``select()`` ceiling, so ``gateway.max_connections`` itself,
    which the protocol enforces, is the bound.
    """
    if sys.platform == "win32":
        return wanted
    else:  # not code after the return: mypy then skips it when checking for Windows
        import resource  # POSIX only: imported where it is used, so this module imports anywhere

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        needed = wanted + FD_RESERVE
        if soft != resource.RLIM_INFINITY and soft < needed:
            target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
            except (ValueError, OSError) as exc:
                log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, exc)
        if soft == resource.RLIM_INFINITY:
            return wanted
        allowed = max(1, min(wanted, soft - FD_RESERVE))
        if allowed < wanted:
            log.warning(
                "gateway.max_connections %d lowered to %d: the open-file limit is %d", wanted, allowed, soft
            )
        return allowed
