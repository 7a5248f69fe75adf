"""Fakes for the gateway's unit tests: an upstream whose answers a test controls, a recording meter,
participants, and an ASGI driver whose client can leave at any moment."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from ops.metering import Usage
from ops.secrets import Secret

KEY = "stack-key-0123456789"


class RecordingMeter:
    """Keeps what the gateway reports; ``seed`` is what :meth:`tokens_since` answers."""

    def __init__(self, seed: dict[str, list[tuple[float, int]]] | None = None):
        self.records: list[Usage] = []
        self.gaps: list[tuple[str, float]] = []
        self.depths: list[tuple[str, int]] = []
        self.seed = seed or {}
        self.asked_since: float | None = None

    def record(self, usage: Usage) -> None:
        self.records.append(usage)

    def inter_token(self, model: str, seconds: float) -> None:
        self.gaps.append((model, seconds))

    def queue_depth(self, model: str, waiting: int) -> None:
        self.depths.append((model, waiting))

    def tokens_since(self, since: float) -> dict[str, list[tuple[float, int]]]:
        self.asked_since = since
        return self.seed


@dataclass
class FakeParticipants:
    """name -> key and name -> password, as the store would hold them."""

    keys: dict[str, str] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)

    def __call__(self, given: bytes) -> str | None:
        return next((n for n, k in self.keys.items() if given == f"Bearer {k}".encode()), None)

    def names(self) -> frozenset[str]:
        return frozenset(self.keys)

    def password(self, name: str) -> Secret | None:
        return Secret(self.passwords[name]) if name in self.passwords else None


def sse(body: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def chunk(content: str | None = None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    return sse(
        {
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
    )


def usage_chunk(prompt: int, completion: int) -> bytes:
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    return sse({"object": "chat.completion.chunk", "choices": [], "usage": usage})


class FakeUpstream:
    """An OpenAI-compatible upstream as an httpx transport.

    A streamed answer sends ``words`` one chunk each, then (when asked) the usage chunk; with
    ``hold`` set, it waits on ``release`` (an asyncio.Event) before its last chunk. ``usage``: send
    usage at all (False: an upstream that ignores ``stream_options``).
    """

    def __init__(self, words: tuple[str, ...] = ("Hello", " there", "!"), prompt_tokens: int = 7):
        self.words = words
        self.prompt_tokens = prompt_tokens
        self.usage = True
        self.hold = False
        self.release: asyncio.Event | None = None
        self.bodies: list[dict[str, Any]] = []
        self.open_streams = 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        if request.url.path.endswith("/embeddings"):
            usage = {"prompt_tokens": 4, "total_tokens": 4}
            return httpx.Response(
                200, json={"object": "list", "data": [{"embedding": [0.1]}], "usage": usage}
            )
        if not body.get("stream"):
            answer = {
                "object": "chat.completion",
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(self.words)}}],
            }
            if self.usage:
                answer["usage"] = {
                    "prompt_tokens": self.prompt_tokens,
                    "completion_tokens": len(self.words),
                    "total_tokens": self.prompt_tokens + len(self.words),
                }
            return httpx.Response(200, json=answer)
        include = bool((body.get("stream_options") or {}).get("include_usage")) and self.usage
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=self._stream(include)
        )

    async def _stream(self, include_usage: bool) -> AsyncIterator[bytes]:
        self.open_streams += 1
        try:
            yield sse(
                {
                    "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {"content": "", "role": "assistant"}}],
                }
            )
            for i, word in enumerate(self.words):
                if self.hold and i == len(self.words) - 1:
                    if self.release is None:
                        self.release = asyncio.Event()
                    await self.release.wait()
                yield chunk(word)
            yield chunk(finish="stop")
            if include_usage:
                yield usage_chunk(self.prompt_tokens, len(self.words))
            yield b"data: [DONE]\n\n"
        finally:
            self.open_streams -= 1


class Call:
    """One request driven straight through the ASGI app; :meth:`leave` makes its client go away."""

    def __init__(self, app: Any, path: str, body: dict[str, Any] | None, headers: dict[str, str]):
        raw = json.dumps(body).encode() if body is not None else b""
        self.messages: list[dict[str, Any]] = []
        self._gone = asyncio.Event()
        self._sent_body = False
        self.started = asyncio.Event()
        self.first_content = asyncio.Event()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST" if body is not None else "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
            + [(b"content-length", str(len(raw)).encode()), (b"content-type", b"application/json")],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000),
        }
        self._raw = raw
        self.task = asyncio.ensure_future(app(scope, self._receive, self._send))

    async def _receive(self) -> dict[str, Any]:
        if not self._sent_body:
            self._sent_body = True
            return {"type": "http.request", "body": self._raw, "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: dict[str, Any]) -> None:
        if self._gone.is_set():
            return  # as uvicorn does: what is sent to a client that left goes nowhere
        self.messages.append(message)
        if message["type"] == "http.response.start":
            self.started.set()
        elif b'"content":"' in message.get("body", b"") and b'"content":""' not in message.get("body", b""):
            self.first_content.set()

    def leave(self) -> None:
        self._gone.set()

    @property
    def status(self) -> int:
        return next(m["status"] for m in self.messages if m["type"] == "http.response.start")

    @property
    def headers(self) -> dict[str, str]:
        start = next(m for m in self.messages if m["type"] == "http.response.start")
        return {k.decode(): v.decode() for k, v in start["headers"]}

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages if m["type"] == "http.response.body")

    def json(self) -> Any:
        return json.loads(self.body)

    async def done(self, timeout: float = 5.0) -> Call:
        await asyncio.wait_for(self.task, timeout)
        return self


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def settle() -> None:
    """Let every ready task run (a few loop turns)."""
    for _ in range(20):
        await asyncio.sleep(0)


def make_app(
    upstream: FakeUpstream | None = None,
    *,
    meter: RecordingMeter | None = None,
    participants: FakeParticipants | None = None,
    services: dict[str, str] | None = None,
    **config: Any,
):
    """A gateway on one chat model ``tiny`` (and ``emb``) whose upstream is ``upstream``."""
    from ops.gateway import ModelState, ModelTable, Route
    from ops.gateway.app import GatewayConfig, create_app

    table = ModelTable()
    table.put(
        Route("tiny", "tiny:1", "http://upstream.invalid/v1", slots=config.pop("route_slots", None)),
        ModelState.READY,
    )
    table.put(Route("emb", "emb:1", "http://upstream.invalid/v1", task="embeddings"), ModelState.READY)
    keys = {f"Bearer {k}".encode(): name for name, k in (services or {}).items()}
    app = create_app(
        table,
        GatewayConfig(
            stack="demo",
            key=Secret(KEY),
            service_key=keys.get,
            participants=participants,
            meter=meter or RecordingMeter(),
            **config,
        ),
    )
    if upstream is not None:
        app.state.inference.upstreams.client = httpx.AsyncClient(transport=upstream.transport())
    return app
