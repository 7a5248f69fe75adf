"""A trivial, very fast OpenAI-compatible server, to measure the load generator's own overhead.

It answers ``/v1/chat/completions`` at once: streamed as a few content chunks (one token each),
then the usage chunk when ``stream_options.include_usage`` asks for it, then ``[DONE]``; or as one
JSON body. It is a bare ASGI callable rather than a Starlette app so that the server spends as
little CPU per request as it can: on a 2-core machine it shares the cores with the generator.

    ops bench-stub --port 8999 [--chunks 5] [--key SECRET] [--model stub]

It prints ``serving http://HOST:PORT/v1`` once it listens. ``ops bench-stub --overhead``
(:func:`overhead`) instead starts the stub in a process of its own and loads it with ``ops bench``'s
generator from this one, giving the requests/s the generator sustained and the CPU each side used
(the issue's goal: at least 500 requests/s on a 2-core machine without the generator being the
bottleneck).
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable

JSON = [(b"content-type", b"application/json")]
SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


def _chunk(model: str, delta: dict, finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


class StubApp:
    """ASGI app serving ``models``; ``chunks`` content chunks per answer; ``key`` checked when set.

    ``delay_s`` holds each answer back before its first byte, like a model thinking, without
    using CPU: at concurrency N a generator that is not the bottleneck then sees N / delay requests/s.
    """

    def __init__(
        self,
        models: tuple[str, ...] = ("stub",),
        chunks: int = 5,
        key: str | None = None,
        delay_s: float = 0.0,
    ):
        self.models = models
        self.chunks = chunks
        self.key = key
        self.delay_s = delay_s
        self._auth = f"Bearer {key}".encode() if key else None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        if self._auth and dict(scope["headers"]).get(b"authorization") != self._auth:
            return await _json(send, 401, _error("invalid API key", "invalid_api_key"))
        path, method = scope["path"], scope["method"]
        if path == "/v1/models" and method == "GET":
            return await _json(send, 200, {"object": "list", "data": [{"id": m} for m in self.models]})
        if path != "/v1/chat/completions" or method != "POST":
            return await _json(send, 404, _error(f"no route {method} {path}", "not_found"))
        try:
            body = json.loads(raw)
        except ValueError:
            return await _json(send, 400, _error("malformed JSON body", "bad_request"))
        model = body.get("model")
        if model not in self.models:
            return await _json(send, 404, _error(f"model {model!r} not found", "model_not_found"))
        count = max(0, min(self.chunks, int(body.get("max_tokens") or self.chunks)))
        usage = {"prompt_tokens": 8, "completion_tokens": count, "total_tokens": 8 + count}
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if not body.get("stream"):
            message = {"role": "assistant", "content": " tok" * count}
            choice = {"index": 0, "message": message, "finish_reason": "length"}
            return await _json(send, 200, {"object": "chat.completion", "choices": [choice], "usage": usage})
        await send({"type": "http.response.start", "status": 200, "headers": SSE})
        parts = [_chunk(model, {"role": "assistant", "content": ""})]
        parts += [_chunk(model, {"content": " tok"}) for _ in range(count)]
        parts.append(_chunk(model, {}, "length"))
        if (body.get("stream_options") or {}).get("include_usage"):
            parts.append(b"data: " + json.dumps({"choices": [], "usage": usage}).encode() + b"\n\n")
        parts.append(b"data: [DONE]\n\n")
        # One write per chunk, as a real server streams them: the client must parse each on its own.
        for part in parts:
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


def _error(message: str, code: str) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}


async def _json(send, status: int, payload: dict) -> None:
    await send({"type": "http.response.start", "status": status, "headers": JSON})
    await send({"type": "http.response.body", "body": json.dumps(payload).encode()})


def overhead(
    levels: list[int], requests: int, chunks: int = 5, delay_ms: float = 0
) -> list[dict[str, float]]:
    """Load a stub (in a child process) at each concurrency level; the generator's and stub's figures."""
    import psutil

    from ops.bench import load
    from ops.bench.target import Target

    cmd = [
        sys.executable,
        "-m",
        "ops",
        "bench-stub",
        "--port",
        "0",
        "--chunks",
        str(chunks),
        "--delay-ms",
        str(delay_ms),
    ]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None  # started with stdout=PIPE
        try:
            url = child.stdout.readline().split()[1]
            stub = psutil.Process(child.pid)
            figures = []
            for concurrency in levels:
                before = stub.cpu_times()
                started = time.perf_counter()
                report = load.run(Target(url), "stub", [concurrency], requests, max_tokens=chunks)
                wall = time.perf_counter() - started
                after = stub.cpu_times()
                level = report.levels[0]
                stub_cpu = (after.user + after.system) - (before.user + before.system)
                figures.append(
                    {
                        "concurrency": concurrency,
                        "requests": level.requests,
                        "errors": level.failed,
                        "requests_per_s": level.requests_per_s,
                        # Little's law: what N workers can do at the stub's delay if the client cost nothing.
                        "ceiling_per_s": concurrency / (delay_ms / 1000) if delay_ms else 0.0,
                        "generator_cpu_percent": level.client_cpu_percent,
                        "generator_cpu_us_per_request": level.client_cpu_s / max(level.requests, 1) * 1e6,
                        # The stub's CPU over the whole call (warm-up included), as a share of one core.
                        "stub_cpu_percent": stub_cpu / wall * 100,
                        "ttft_p50_ms": level.ttft_ms.p50,
                        "e2e_p50_ms": level.e2e_ms.p50,
                        "e2e_p99_ms": level.e2e_ms.p99,
                    }
                )
        finally:
            child.terminate()
    return figures


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    models: tuple[str, ...] = ("stub",),
    chunks: int = 5,
    key: str | None = None,
    delay_ms: float = 0.0,
    on_listening: Callable[[str], None] = lambda _url: None,
) -> None:
    """Serve the stub until interrupted; ``on_listening`` gets its ``/v1`` URL once it listens."""
    import uvicorn

    sock = socket.socket()
    sock.bind((host, port))
    # Listening before saying so: a client that reads the URL may connect at once.
    sock.listen(2048)
    app = StubApp(models, chunks, key, delay_ms / 1000)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", backlog=2048)
    on_listening(f"http://{host}:{sock.getsockname()[1]}/v1")
    uvicorn.Server(config).run(sockets=[sock])
