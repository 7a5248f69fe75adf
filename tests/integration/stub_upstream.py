"""A real local OpenAI-compatible HTTP server for routing tests: answers (chat and embeddings), fails with 500, or stalls."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


class StubUpstream:
    """``mode``: ``ok`` (answers "from NAME"), ``fail`` (HTTP 500) or ``stall`` (no answer for a minute).

    ``received`` holds every chat and embeddings body it was sent, in order.
    """

    def __init__(self, name: str, mode: str = "ok"):
        self.name, self.mode = name, mode
        self.received: list[dict] = []
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        app = Starlette(
            routes=[
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
            ]
        )
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> StubUpstream:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *_exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "m", "object": "model"}]})

    async def _embeddings(self, request: Request) -> Response:
        body = await request.json()
        self.received.append(body)
        texts = body["input"] if isinstance(body.get("input"), list) else [body.get("input")]
        data = [{"object": "embedding", "index": i, "embedding": [1.0, 0.0]} for i, _ in enumerate(texts)]
        return JSONResponse({"object": "list", "data": data, "model": "m"})

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        self.received.append(body)
        if self.mode == "fail":
            return JSONResponse({"error": {"message": "boom", "type": "server_error"}}, status_code=500)
        if self.mode == "stall":
            await asyncio.sleep(60)
        text = f"from {self.name}"
        if body.get("stream"):

            async def chunks():
                for word in text.split():
                    delta = {"choices": [{"index": 0, "delta": {"content": word + " "}}]}
                    yield f"data: {json.dumps(delta)}\n\n"
                yield "data: [DONE]\n\n"

            return StreamingResponse(chunks(), media_type="text/event-stream")
        message = {"role": "assistant", "content": text}
        return JSONResponse(
            {
                "id": "x",
                "object": "chat.completion",
                "model": "m",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            }
        )
