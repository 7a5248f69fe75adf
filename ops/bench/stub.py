"""A trivial, very fast OpenAI-compatible server, to measure the load generator's own overhead.

It answers ``/v1/chat/completions`` at once: streamed as a few content chunks (one token each),
then the usage chunk when ``stream_options.include_usage`` asks for it, then ``[DONE]``; or as one
JSON body. It is a bare ASGI callable rather than a Starlette app so that the server spends as
little CPU per request as it can: on a 2-core machine it shares the cores with the generator.

    python -m ops.bench.stub --port 8999 [--chunks 5] [--key SECRET] [--model stub]

It prints ``serving http://HOST:PORT/v1`` once it listens.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys

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
    """ASGI app serving ``models``; ``chunks`` content chunks per answer; ``key`` checked when set."""

    def __init__(self, models: tuple[str, ...] = ("stub",), chunks: int = 5, key: str | None = None):
        self.models = models
        self.chunks = chunks
        self.key = key
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


def main(argv: list[str] | None = None) -> int:
    """``python -m ops.bench.stub``: serve the stub until interrupted."""
    import uvicorn

    parser = argparse.ArgumentParser(description="A very fast OpenAI-compatible stub for load tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    parser.add_argument("--chunks", type=int, default=5, help="content chunks per streamed answer")
    parser.add_argument("--key", default=None, help="require this bearer key")
    parser.add_argument("--model", action="append", help="a model name to serve (default: stub)")
    args = parser.parse_args(argv)
    sock = socket.socket()
    sock.bind((args.host, args.port))
    # Listening before saying so: a client that reads the line may connect at once.
    sock.listen(2048)
    app = StubApp(tuple(args.model or ["stub"]), args.chunks, args.key)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", backlog=2048)
    print(f"serving http://{args.host}:{sock.getsockname()[1]}/v1", flush=True)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
