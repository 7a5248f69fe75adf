"""Cancel a request's work when its client goes away before the answer starts.

uvicorn tells an application that its client left only when the application reads (``receive``
returns ``http.disconnect``); a handler waiting for a non-streamed completion never reads, so the
upstream would generate the whole answer for nobody. :class:`CancelOnDisconnect` watches the
connection once the body is read and cancels the handler, which closes the upstream connection
(httpx drops a connection whose response it was waiting for), so the upstream stops too.

Once the response has started (a stream), the handler is not cancelled: the disconnect is handed to
it, and Starlette's streaming response stops and closes its upstream itself.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class CancelOnDisconnect:
    """ASGI middleware: a client that leaves before the response starts cancels its handler."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_read = asyncio.Event()
        gone = asyncio.Event()
        started = False

        async def app_receive() -> Message:
            if body_read.is_set():
                await gone.wait()  # the watcher reads from now on; it hands the disconnect over
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.disconnect":
                gone.set()
                body_read.set()
            elif not message.get("more_body", False):
                body_read.set()
            return message

        async def app_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        async def watch() -> None:
            await body_read.wait()
            while not gone.is_set():
                # uvicorn answers only when the client left or the response is complete.
                if (await receive())["type"] == "http.disconnect":
                    gone.set()

        handler = asyncio.ensure_future(self.app(scope, app_receive, app_send))
        watcher = asyncio.ensure_future(watch())
        cancelled = False
        try:
            done, _ = await asyncio.wait({handler, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if handler not in done and gone.is_set() and not started:
                handler.cancel()
                cancelled = True
            try:
                await handler
            except asyncio.CancelledError:
                if not cancelled:
                    raise
        finally:
            watcher.cancel()
            if not handler.done():
                handler.cancel()
