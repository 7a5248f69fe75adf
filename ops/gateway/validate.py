"""Reading a request body: strict JSON, then the types of the fields the gateway or its upstreams read.

Everything here answers 400 in OpenAI's shape (:class:`InvalidBody`), never 500: JSON nested past
``MAX_DEPTH``, integers over Python's 4,300 digits, ``NaN``/``Infinity`` (and ``1e999``, which Python
reads as infinity) that would be forwarded upstream as invalid JSON, unpaired surrogates that cannot be
written back as UTF-8, and fields of the wrong type: ``"stream": "false"`` is not false.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

#: Deepest JSON accepted; tool schemas nest perhaps ten levels, Python's own limit is about 1,000.
MAX_DEPTH = 64
#: Largest integer accepted where a count is expected (the int32 every runtime can hold).
MAX_COUNT = 2**31 - 1


class InvalidBody(Exception):
    """A request body the gateway refuses with 400."""

    def __init__(self, message: str, param: str | None = None, code: str = "invalid_value"):
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


def _constant(name: str) -> Any:
    raise InvalidBody(f"{name} is not valid JSON (numbers must be finite)", code="invalid_json")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise InvalidBody(
            f"the number {text[:40]} is too large (numbers must be finite)", code="invalid_json"
        )
    return value


def parse(raw: bytes) -> dict[str, Any]:
    """``raw`` as a JSON object, or :class:`InvalidBody`."""
    try:
        body = json.loads(raw, parse_constant=_constant, parse_float=_finite)
    except RecursionError:
        raise InvalidBody(f"JSON nested deeper than {MAX_DEPTH} levels", code="invalid_json") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, integers over 4,300 digits
        raise InvalidBody(f"malformed JSON body: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidBody("the request body must be a JSON object", code="invalid_json")
    _check_tree(body)
    return body


def _check_tree(body: dict[str, Any]) -> None:
    """Depth at most ``MAX_DEPTH``; every string (keys too) encodable as UTF-8."""
    pending: list[tuple[Any, int]] = [(body, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            _utf8(value)
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_DEPTH:
            raise InvalidBody(f"JSON nested deeper than {MAX_DEPTH} levels", code="invalid_json")
        if isinstance(value, dict):
            for key, item in value.items():
                _utf8(key)
                pending.append((item, depth + 1))
        else:
            pending.extend((item, depth + 1) for item in value)


def _utf8(text: str) -> None:
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            raise InvalidBody("a string holds an unpaired UTF-16 surrogate", code="invalid_json") from None


# -- field types -------------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _count(low: int, high: int = MAX_COUNT) -> Callable[[Any], str | None]:
    what = f"a positive integer (at most {high})" if low == 1 else f"an integer from {low} to {high}"

    def check(value: Any) -> str | None:
        return None if _is_int(value) and low <= value <= high else what

    return check


def _number(low: float, high: float) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if _is_number(value) and low <= value <= high else f"a number from {low:g} to {high:g}"

    return check


def _of(kind: type | tuple[type, ...], what: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            return what
        return None if isinstance(value, kind) else what

    return check


def _stop(value: Any) -> str | None:
    if isinstance(value, str) or (
        isinstance(value, list) and len(value) <= 16 and all(isinstance(s, str) for s in value)
    ):
        return None
    return "a string or a list of at most 16 strings"


def _messages(value: Any) -> str | None:
    what = (
        "a non-empty list of message objects, each with a string `role` and a `content` that is"
        " null, a string or a list of part objects"
    )
    if not isinstance(value, list) or not value:
        return what
    for message in value:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            return what
        content = message.get("content")
        if not (
            content is None
            or isinstance(content, str)
            or (isinstance(content, list) and all(isinstance(part, dict) for part in content))
        ):
            return what
    return None


def _model(value: Any) -> str | None:
    return None if isinstance(value, str) and value else "a non-empty string"


def _input(value: Any) -> str | None:
    what = "a string, a non-empty list of strings, or token ids (a list of integers, or of such lists)"
    if isinstance(value, str):
        return None
    if not isinstance(value, list) or not value:
        return what
    if all(isinstance(v, str) for v in value) or all(_is_int(v) for v in value):
        return None
    if all(isinstance(v, list) and v and all(_is_int(t) for t in v) for v in value):
        return None
    return what


#: Optional chat fields: what each must be when present and not null.
CHAT_FIELDS: dict[str, Callable[[Any], str | None]] = {
    "model": _model,
    "messages": _messages,
    "stream": _of(bool, "true or false"),
    "stream_options": _of(dict, "an object"),
    "max_tokens": _count(1),
    "max_completion_tokens": _count(1),
    "n": _count(1, 128),
    "temperature": _number(0, 2),
    "top_p": _number(0, 1),
    "presence_penalty": _number(-2, 2),
    "frequency_penalty": _number(-2, 2),
    "seed": _count(-(2**63), 2**63 - 1),
    "stop": _stop,
    "logprobs": _of(bool, "true or false"),
    "top_logprobs": _count(0, 20),
    "logit_bias": _of(dict, "an object"),
    "user": _of(str, "a string"),
    "tools": _of(list, "a list of tool objects"),
    "tool_choice": _of((str, dict), "a string or an object"),
    "parallel_tool_calls": _of(bool, "true or false"),
    "response_format": _of(dict, "an object"),
}

EMBEDDINGS_FIELDS: dict[str, Callable[[Any], str | None]] = {
    "model": _model,
    "input": _input,
    "encoding_format": lambda v: None if v in ("float", "base64") else '"float" or "base64"',
    "dimensions": _count(1),
    "user": _of(str, "a string"),
}


def _fields(body: dict[str, Any], checks: dict[str, Callable[[Any], str | None]]) -> None:
    for name, check in checks.items():
        value = body.get(name)
        if value is None:
            continue
        expected = check(value)
        if expected is not None:
            code = "missing_model" if name == "model" else "invalid_type"
            raise InvalidBody(f"`{name}` must be {expected}", param=name, code=code)


def chat(body: dict[str, Any]) -> None:
    """Refuse a chat completion body whose fields have the wrong types; ``model`` and ``messages`` are required."""
    if body.get("model") is None:
        raise InvalidBody("`model` is required (a string)", param="model", code="missing_model")
    _fields(body, CHAT_FIELDS)
    if body.get("messages") is None:
        raise InvalidBody("`messages` must be a non-empty list of message objects", param="messages")


def embeddings(body: dict[str, Any]) -> None:
    """Refuse an embeddings body whose fields have the wrong types; ``model`` and ``input`` are required."""
    if body.get("model") is None:
        raise InvalidBody("`model` is required (a string)", param="model", code="missing_model")
    _fields(body, EMBEDDINGS_FIELDS)
    if body.get("input") is None:
        raise InvalidBody("`input` is required", param="input")
