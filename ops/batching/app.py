"""The batching engine's OpenAI-compatible app: what the gateway routes to, as it routes to Foundry's web service.

Routes: ``POST /v1/chat/completions`` (streamed or not), ``GET /v1/models``, ``GET /v1/models/{id}``,
``GET /health`` (each model's batch and queue). Answers: 400 for a bad body (naming the field) or a
request longer than the context; 404 for an unknown model; 429 with ``Retry-After`` when the
engine's queue is full (the gateway passes a 429 on, and a virtual model falls back on it); 503
when the engine stopped; 500 for anything else; all in OpenAI's error shape. A client that leaves,
before the answer starts or while it streams, has its request cancelled in the engine.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ops.batching import wire
from ops.batching.chat import ChatRequest, parse
from ops.batching.completion import Completion, GenerationFailed
from ops.batching.engine import EngineStopped, Overloaded
from ops.batching.model import EngineModel
from ops.gateway.disconnect import CancelOnDisconnect
from ops.gateway.validate import InvalidBody

log = logging.getLogger(__name__)
#: Seconds a client refused for a full queue is asked to wait (``Retry-After``).
RETRY_AFTER_S = 1


def json_response(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``body`` written as Foundry writes JSON."""
    return Response(wire.dumps(body), status, headers=headers, media_type="application/json")


def error_response(
    status: int,
    message: str,
    kind: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """An OpenAI-shaped error."""
    return json_response(wire.error(message, kind, param, code), status, headers)


def create_app(models: Mapping[str, EngineModel]) -> CancelOnDisconnect:
    """The ASGI app serving ``models`` (model id -> loaded model)."""

    async def chat_completions(request: Request) -> Response:
        try:
            chat = parse(await request.body())
        except InvalidBody as exc:
            return error_response(400, exc.message, param=exc.param, code=exc.code)
        model = models.get(chat.model)
        if model is None:
            known = ", ".join(models) or "none"
            return error_response(
                404,
                f"Model not found: No model matching {chat.model!r} (known: {known})",
                code="model_not_found",
            )
        try:
            completion = model.complete(chat)
        except ValueError as exc:
            return error_response(400, str(exc), param="max_tokens", code="context_length_exceeded")
        except Overloaded as exc:
            return error_response(
                429,
                str(exc),
                "rate_limit_error",
                code="server_busy",
                headers={"retry-after": str(RETRY_AFTER_S)},
            )
        except EngineStopped as exc:
            return error_response(503, str(exc), "service_unavailable", code="engine_stopped")
        id_, created = wire.new_id(), wire.now()
        if chat.stream:
            return _Stream(completion, _events(completion, chat, model.model_id, id_, created))
        try:
            text = await completion.text()
        except GenerationFailed as exc:
            return error_response(500, str(exc), "api_error", code="generation_failed")
        outcome = completion.outcome
        assert outcome is not None
        body = wire.completion(
            id_,
            created,
            model.model_id,
            text,
            outcome.finish_reason,
            outcome.prompt_tokens,
            outcome.completion_tokens,
        )
        return json_response(body)

    async def list_models(request: Request) -> Response:
        cards = [wire.model_card(m.model_id, m.created) for m in list(models.values())]
        return json_response({"data": cards, "object": "list"})

    async def model_card(request: Request) -> Response:
        model = models.get(request.path_params["model"])
        if model is None:
            return error_response(
                404, f"Model not found: {request.path_params['model']!r}", code="model_not_found"
            )
        return json_response(wire.model_card(model.model_id, model.created))

    async def health(request: Request) -> Response:
        return json_response(
            {"status": "ok", "models": {m.model_id: _state(m) for m in list(models.values())}}
        )

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", model_card, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ],
        exception_handlers={404: _not_found, 405: _not_allowed, 500: _failed},
    )
    return CancelOnDisconnect(app)


class _Stream(StreamingResponse):
    """A streamed answer whose request is cancelled in the engine however the response ends."""

    def __init__(self, completion: Completion, events: AsyncIterator[bytes]):
        # Foundry says text/event-stream with no charset; Starlette would add one to a media_type.
        super().__init__(events, headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
        self.completion = completion

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # The client left (or sending failed): the engine stops generating for nobody.
            await self.completion.stream.aclose()


async def _events(
    completion: Completion, chat: ChatRequest, model: str, id_: str, created: int
) -> AsyncIterator[bytes]:
    """The SSE body of a streamed answer; an engine failure midway is an ``error`` event, then the end."""
    yield wire.sse(wire.chunk(id_, created, model, {"content": "", "role": "assistant"}))
    try:
        async for piece in completion:
            yield wire.sse(wire.chunk(id_, created, model, {"content": piece}))
    except GenerationFailed as exc:
        yield wire.sse(wire.error(str(exc), "api_error", code="generation_failed"))
        yield wire.DONE
        return
    outcome = completion.outcome
    assert outcome is not None
    yield wire.sse(wire.chunk(id_, created, model, {}, outcome.finish_reason))
    if chat.include_usage:
        yield wire.sse(
            wire.usage_chunk(id_, created, model, outcome.prompt_tokens, outcome.completion_tokens)
        )
    yield wire.DONE


def _state(model: EngineModel) -> dict[str, object]:
    engine = model.engine
    generating, waiting = engine.load()
    stats = engine.stats
    return {
        "generating": generating,
        "waiting": waiting,
        "max_batch": engine.max_batch,
        "lanes": engine.limits.lanes,
        "max_queue": engine.limits.max_queue,
        "kv_cache_mb": engine.limits.kv_cache_mb,
        "context": engine.context,
        "batches": stats.batches,
        "batch_sizes": {str(k): v for k, v in sorted(stats.batch_sizes.items())},
        "steps": stats.steps,
        "mean_step_ms": round(stats.step_s / stats.steps * 1000, 2) if stats.steps else 0.0,
        "finished": stats.finished,
        "cancelled": stats.cancelled,
        "failed": stats.failed,
        "refused": stats.refused,
    }


async def _not_found(request: Request, exc: Exception) -> Response:
    return error_response(404, f"no route {request.method} {request.url.path}", code="not_found")


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return error_response(
        405, f"{request.method} is not allowed on {request.url.path}", code="method_not_allowed"
    )


async def _failed(request: Request, exc: Exception) -> Response:
    log.exception("batching app: %s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(500, f"internal error: {type(exc).__name__}", "api_error", code="internal_error")
