"""The JSON the batching app sends, shaped field for field as Foundry Local's web service sends it.

Captured from foundry-local-sdk 2.2.1's web service (``/catalogs/local/v1/chat/completions``) and
matched here: keys in sorted order, compact separators, UTF-8 unescaped; ``id`` is ``chatcmpl-``
and 16 hex digits; every choice carries ``logprobs: null``, every body ``system_fingerprint:
null``; a stream opens with a chunk whose delta is ``{"content": "", "role": "assistant"}``, sends
one chunk per piece of text, ends with an empty delta carrying ``finish_reason``, then (when
``stream_options.include_usage``) a chunk with no choices and the usage, then ``data: [DONE]``.
Errors are ``{"error": {"code", "message", "param", "type"}}``.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

DONE = b"data: [DONE]\n\n"


def dumps(body: Any) -> bytes:
    """``body`` as Foundry writes JSON: sorted keys, no spaces, UTF-8."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sse(body: Any) -> bytes:
    """One server-sent event carrying ``body``."""
    return b"data: " + dumps(body) + b"\n\n"


def new_id() -> str:
    """A completion id: ``chatcmpl-`` and 16 hex digits."""
    return f"chatcmpl-{secrets.token_hex(8)}"


def now() -> int:
    """``created``: seconds since the epoch."""
    return int(time.time())


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """The ``usage`` object."""
    return {
        "completion_tokens": completion_tokens,
        "completion_tokens_details": {"reasoning_tokens": 0},
        "prompt_tokens": prompt_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion(
    id_: str,
    created: int,
    model: str,
    text: str,
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
) -> dict[str, Any]:
    """A whole (not streamed) chat completion."""
    return {
        "choices": [
            {
                "finish_reason": finish_reason,
                "index": 0,
                "logprobs": None,
                "message": {"content": text, "refusal": None, "role": "assistant"},
            }
        ],
        "created": created,
        "id": id_,
        "model": model,
        "object": "chat.completion",
        "system_fingerprint": None,
        "usage": usage(prompt_tokens, completion_tokens),
    }


def chunk(
    id_: str, created: int, model: str, delta: dict[str, str], finish_reason: str | None = None
) -> dict:
    """One streamed chunk with one choice."""
    return {
        "choices": [{"delta": delta, "finish_reason": finish_reason, "index": 0, "logprobs": None}],
        "created": created,
        "id": id_,
        "model": model,
        "object": "chat.completion.chunk",
        "system_fingerprint": None,
    }


def usage_chunk(id_: str, created: int, model: str, prompt_tokens: int, completion_tokens: int) -> dict:
    """The last chunk of a stream that asked for usage: no choices."""
    return {
        "choices": [],
        "created": created,
        "id": id_,
        "model": model,
        "object": "chat.completion.chunk",
        "system_fingerprint": None,
        "usage": usage(prompt_tokens, completion_tokens),
    }


def error(
    message: str, kind: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """An error body in OpenAI's shape."""
    return {"error": {"code": code, "message": message, "param": param, "type": kind}}


def model_card(model_id: str, created: int) -> dict[str, Any]:
    """One entry of ``/v1/models``."""
    return {"created": created, "id": model_id, "object": "model", "owned_by": "local"}
