"""One streamed chat completion, timed chunk by chunk: what ``ops bench`` and ``ops compare`` send.

The request asks for ``stream_options.include_usage`` so that the server's own token count comes
with the last chunk when it supports it; content chunks are timed as they arrive. A failure of any
kind (HTTP status, transport error, an error event in the stream) is a failed :class:`Sample`,
never an exception: a load run counts failures, it does not stop at the first.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import httpx

from ops.bench.target import Target


@dataclass(frozen=True)
class Sample:
    """One request as the generator saw it; times in seconds from the request's own start."""

    ok: bool
    error: str = ""
    ttft_s: float = 0.0
    e2e_s: float = 0.0
    token_times_s: tuple[float, ...] = ()
    usage_completion: int | None = None
    usage_prompt: int | None = None
    warmup: bool = False
    text: str = ""

    @property
    def chunks(self) -> int:
        """Content chunks received (each counted as one token)."""
        return len(self.token_times_s)

    @property
    def output_tokens(self) -> int:
        """Output tokens: the server's usage when it sent one, else the content chunks."""
        return self.usage_completion if self.usage_completion is not None else self.chunks


async def stream_chat(
    client: httpx.AsyncClient, target: Target, body: dict, *, warmup: bool = False, keep_text: bool = False
) -> Sample:
    """Send one streamed chat completion and time its content chunks; never raises for a failure."""
    started = time.perf_counter()
    times: list[float] = []
    pieces: list[str] = []
    usage: dict = {}
    payload = {**body, "stream": True, "stream_options": {"include_usage": True}}
    try:
        async with client.stream(
            "POST", f"{target.url}/chat/completions", json=payload, headers=target.headers
        ) as response:
            if response.status_code != 200:
                await response.aread()
                return Sample(
                    False, _http_error(response), e2e_s=time.perf_counter() - started, warmup=warmup
                )
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    # Read on to the end of the body rather than break: a response closed unread
                    # costs its keep-alive connection, and a new TCP handshake per request.
                    continue
                chunk = json.loads(data)
                if "error" in chunk:
                    message = (chunk["error"] or {}).get("message", "error event")
                    return Sample(False, f"stream error: {message}"[:120], warmup=warmup)
                choices = chunk.get("choices") or ()
                content = (choices[0].get("delta") or {}).get("content") if choices else None
                if content:
                    times.append(time.perf_counter() - started)
                    if keep_text:
                        pieces.append(content)
                usage = chunk.get("usage") or usage
    except httpx.HTTPError as exc:
        return Sample(False, type(exc).__name__, e2e_s=time.perf_counter() - started, warmup=warmup)
    except ValueError:
        return Sample(False, "malformed SSE chunk", e2e_s=time.perf_counter() - started, warmup=warmup)
    return Sample(
        True,
        ttft_s=times[0] if times else 0.0,
        e2e_s=time.perf_counter() - started,
        token_times_s=tuple(times),
        usage_completion=usage.get("completion_tokens"),
        usage_prompt=usage.get("prompt_tokens"),
        warmup=warmup,
        text="".join(pieces),
    )


def _http_error(response: httpx.Response) -> str:
    try:
        code = (response.json().get("error") or {}).get("code")
    except (ValueError, AttributeError):
        code = None
    return f"HTTP {response.status_code}" + (f" {code}" if code else "")


def run_async(coro):
    """Run ``coro`` on uvloop when it is installed (a cheaper loop for the generator), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)
