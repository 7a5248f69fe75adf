"""A chat completion request as the batching engine serves it: read once, checked, with OpenAI's defaults.

The body is read and type-checked by the gateway's own rules (:mod:`ops.gateway.validate`: strict
JSON, a 400 naming the field), then turned into a frozen :class:`ChatRequest`. What the engine
cannot do is refused with 400 rather than ignored: ``n`` above 1, content parts other than text,
``logprobs``. Fields it does not use (``seed``, ``user``, penalties) are accepted and ignored, as
Foundry Local does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ops.gateway.validate import InvalidBody
from ops.gateway.validate import chat as check_types
from ops.gateway.validate import parse as parse_json

#: OpenAI's default sampling temperature (and Foundry Local's) when a request sends none.
DEFAULT_TEMPERATURE = 1.0


@dataclass(frozen=True)
class ChatRequest:
    """What one chat completion asks for; ``max_tokens`` None means up to the model's context."""

    model: str
    messages: tuple[tuple[str, str], ...]  # (role, text) for the chat template
    max_tokens: int | None = None
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = 1.0
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    stream: bool = False
    include_usage: bool = False

    @property
    def greedy(self) -> bool:
        """True when the answer takes the most likely token each time (temperature 0)."""
        return self.temperature == 0

    def template_messages(self) -> list[dict[str, str]]:
        """The messages as the chat template reads them."""
        return [{"role": role, "content": text} for role, text in self.messages]


def parse(raw: bytes) -> ChatRequest:
    """``raw`` (a request body) as a :class:`ChatRequest`, or :class:`InvalidBody` naming the field."""
    return from_body(parse_json(raw))


def from_body(body: dict[str, Any]) -> ChatRequest:
    """A decoded body as a :class:`ChatRequest`, or :class:`InvalidBody` naming the field."""
    check_types(body)
    if body.get("n") not in (None, 1):
        raise InvalidBody("`n` must be 1: this server writes one answer per request", param="n")
    if body.get("logprobs"):
        raise InvalidBody("`logprobs` is not supported by this server", param="logprobs")
    top_k = body.get("top_k")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 0):
        raise InvalidBody("`top_k` must be an integer of 0 or more", param="top_k", code="invalid_type")
    stop = body.get("stop")
    stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
    if any(not s for s in stops):
        raise InvalidBody("`stop` must not hold an empty string", param="stop")
    options = body.get("stream_options") or {}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    temperature = body.get("temperature")
    return ChatRequest(
        model=body["model"],
        messages=tuple(_message(i, m) for i, m in enumerate(body["messages"])),
        max_tokens=max_tokens,
        temperature=DEFAULT_TEMPERATURE if temperature is None else float(temperature),
        top_p=1.0 if body.get("top_p") is None else float(body["top_p"]),
        top_k=top_k,
        stop=stops,
        stream=bool(body.get("stream")),
        include_usage=bool(options.get("include_usage")),
    )


def _message(index: int, message: dict[str, Any]) -> tuple[str, str]:
    """(role, text) of one message; content parts other than text are refused."""
    content = message.get("content")
    if content is None:
        return message["role"], ""
    if isinstance(content, str):
        return message["role"], content
    texts = []
    for part in content:
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise InvalidBody(
                f"`messages[{index}].content` may hold only text parts here ({{'type': 'text', 'text': ...}})",
                param=f"messages[{index}].content",
            )
        texts.append(part["text"])
    return message["role"], "".join(texts)
