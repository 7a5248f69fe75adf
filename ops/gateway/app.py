"""The gateway's HTTP application (Starlette), proxying to upstreams with httpx."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as HttpRoute
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from ops.gateway import validate
from ops.gateway.disconnect import CancelOnDisconnect
from ops.gateway.routing import Privacy, Router
from ops.gateway.table import ModelState, ModelTable, Route
from ops.gateway.upstream import UpstreamFailed, Upstreams, error_response
from ops.profiles.schema import DEFAULT_PRIVATE_PATTERNS, RoutingSpec
from ops.secrets import Secret

#: Called by the admin routes to load or unload a model in the host; returns when done.
Control = Callable[[str, str], Awaitable[None]]


class GatewayError(Exception):
    """An error answered to the client in OpenAI's JSON shape."""

    def __init__(
        self, status: int, message: str, kind: str = "invalid_request_error", code: str | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code


@dataclass
class GatewayConfig:
    """What the gateway needs besides its model table."""

    stack: str
    key: Secret
    default_max_tokens: int = 300
    max_body_bytes: int = 4 * 1024 * 1024
    started: float = field(default_factory=time.time)
    upstream_timeout: float = 600.0
    routing: RoutingSpec | None = None
    #: Finds the service whose inference-only key is ``Authorization``'s value (``Bearer <key>``),
    #: or None. Those keys reach the OpenAI routes; the ``/ops/`` routes take :attr:`key` only.
    service_key: Callable[[bytes], str | None] | None = field(default=None, compare=False)
    #: What counts as personal data when there is no ``routing`` (which then has its own).
    private_patterns: tuple[str, ...] = DEFAULT_PRIVATE_PATTERNS


def create_app(table: ModelTable, config: GatewayConfig, control: Control | None = None) -> Starlette:
    """The gateway application for ``table``; ``control`` enables the load/unload admin routes."""
    upstreams = Upstreams(config.upstream_timeout)

    def remote(name: str) -> bool:
        """True when requests to ``name`` leave the machine (and for a name not known yet: fail closed)."""
        route = table.resolve(name)
        return route.remote if route is not None else True

    router = Router(config.routing, remote=remote) if config.routing else None
    privacy = router.privacy if router else Privacy(config.private_patterns)
    expected = f"Bearer {config.key.reveal()}".encode()

    def authorised(request: Request, admin: bool = False) -> None:
        """The stack key may do everything; a service's key only the OpenAI routes (not ``admin`` ones)."""
        given = request.headers.get("authorization", "").encode()
        if not given:
            raise GatewayError(
                401, "missing API key: send `Authorization: Bearer <stack key>`", code="invalid_api_key"
            )
        if secrets.compare_digest(given, expected):
            return
        service = config.service_key(given) if config.service_key else None
        if service is None:
            raise GatewayError(
                401,
                "invalid API key (see `ops endpoint` for where the key is stored)",
                code="invalid_api_key",
            )
        if admin:
            raise GatewayError(
                403,
                f"the key of service {service!r} may only run models; {request.url.path} needs the stack key "
                "(`ops endpoint`)",
                code="insufficient_permissions",
            )

    async def read_json(request: Request) -> dict[str, Any]:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > config.max_body_bytes:
            raise GatewayError(
                413, f"request body over {config.max_body_bytes} bytes", code="request_too_large"
            )
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > config.max_body_bytes:
                raise GatewayError(
                    413, f"request body over {config.max_body_bytes} bytes", code="request_too_large"
                )
            chunks.append(chunk)
        return validate.parse(b"".join(chunks))

    def route_for(body: dict[str, Any], task: str) -> Route:
        name = body.get("model")
        if not isinstance(name, str) or not name:
            raise GatewayError(400, "`model` is required (a string)", code="missing_model")
        route = table.resolve(name)
        if route is None:
            known = ", ".join(table.names()) or "none"
            raise GatewayError(
                404, f"model {name!r} not found; known models: {known}", code="model_not_found"
            )
        if route.task != task:
            raise GatewayError(400, f"model {route.alias!r} serves {route.task}, not {task}")
        state = table.state(route.alias)
        if state != ModelState.READY:
            detail = table.details.get(route.alias, "")
            raise GatewayError(
                503,
                f"model {route.alias!r} is not ready ({state.value}{': ' + detail if detail else ''})",
                kind="service_unavailable",
                code="model_not_ready",
            )
        return route

    def keep_private(route: Route, body: dict[str, Any], request: Request) -> None:
        """Refuse (never forward) a private request to a model whose requests leave the machine."""
        if not route.remote:
            return
        reason = privacy.reason(body, dict(request.headers))
        if not reason:
            return
        local = [a for a, r in table.routes.items() if not r.remote and r.task == route.task]
        if reason == "marked private":
            undo = "or drop the private mark (`x-ops-private`, `metadata.private`)"
        elif reason == "contains personal data":
            undo = (
                "or remove the personal data (e-mail addresses, phone, IBAN, card or social security numbers)"
            )
        else:
            undo = "or send text only"
        raise GatewayError(
            403,
            f"model {route.alias!r} is remote (requests to it leave this machine) and this request is "
            f"private ({reason}), so it was not sent. Use a model that stays on this machine "
            f"({', '.join(local) or 'this stack serves none'}), {undo}; a `url:` model that really runs "
            "here can say `remote: false` in the profile",
            code="private_request_to_remote_model",
        )

    async def forward(route: Route, path: str, body: dict[str, Any]) -> Response:
        try:
            upstream = await upstreams.send(route, path, body)
        except UpstreamFailed as exc:
            raise GatewayError(502, f"upstream {exc}", kind="api_error") from None
        return await upstreams.respond(route, upstream, bool(body.get("stream")))

    async def routed(name: str, body: dict[str, Any], request: Request) -> Response:
        """A virtual model: try the rule's candidates in order, falling back on failure (tenacity)."""
        assert router is not None
        decision = router.decide(name, body, dict(request.headers))
        router.counts[f"requests:{name}"] += 1
        if not decision.candidates:
            raise GatewayError(
                403,
                f"no route for this private request ({decision.reason}): every model {name!r} routes it to "
                "leaves this machine, so it was not sent. Add a local model to the rule, or pick one that "
                "stays on this machine",
                code="no_private_route",
            )
        first_byte = router.spec.models[name].timeout
        failures: list[str] = []

        async def attempt_once(alias: str) -> tuple[Route, httpx.Response]:
            route = table.resolve(alias)
            if route is None or table.state(route.alias) != ModelState.READY:
                raise UpstreamFailed(f"{alias}: not ready")
            if decision.features.private and route.remote:  # decide() removed them; never send one anyway
                raise UpstreamFailed(f"{alias}: remote, and the request is private")
            candidate = dict(body)
            _fill_max_tokens(candidate, config.default_max_tokens, route.context)
            _fill_defaults(candidate, route)
            _strip_tools(candidate, route)
            upstream = await upstreams.send(route, "/chat/completions", candidate, first_byte)
            if upstream.status_code >= 500 or upstream.status_code == 429:
                await upstream.aclose()
                raise UpstreamFailed(f"{alias}: HTTP {upstream.status_code}")
            return route, upstream

        retrying = AsyncRetrying(
            stop=stop_after_attempt(len(decision.candidates)),
            retry=retry_if_exception_type(UpstreamFailed),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    alias = decision.candidates[attempt.retry_state.attempt_number - 1]
                    try:
                        route, upstream = await attempt_once(alias)
                    except UpstreamFailed as exc:
                        failures.append(str(exc))
                        router.counts["fallbacks"] += 1
                        raise
        except UpstreamFailed:
            router.counts[f"failed:{name}"] += 1
            raise GatewayError(
                502, f"every route failed: {'; '.join(failures)}", kind="api_error", code="all_routes_failed"
            ) from None
        router.counts[f"route:{route.alias}"] += 1
        reason = decision.reason + (f"; fell back after {', '.join(failures)}" if failures else "")
        headers = {
            "x-ops-route": route.alias,
            "x-ops-route-reason": reason,
            "x-ops-task": decision.features.task,
        }
        return await upstreams.respond(route, upstream, bool(body.get("stream")), headers)

    def model_card(alias: str) -> dict[str, Any]:
        route = table.routes[alias]
        return {
            "id": alias,
            "object": "model",
            "created": int(config.started),
            "owned_by": route.provider,
            "ready": table.state(alias) == ModelState.READY,
            "upstream_id": route.model_id,
            "upstream_url": route.base_url,
            "task": route.task,
            "context_length": route.context,
            "tool_calling": route.tools,
            "remote": route.remote,
        }

    async def health(request: Request) -> Response:
        states = {alias: table.state(alias).value for alias in table.names()}
        ready = table.ready
        payload = {"status": "ok" if ready else "loading", "stack": config.stack, "models": states}
        # Which path serves each model: batching (ops' engine), foundry (its web service), openai (a server).
        payload["serving"] = {alias: route.provider for alias, route in table.routes.items()}
        if table.details:
            payload["details"] = dict(table.details)
        return JSONResponse(payload, status_code=200 if ready else 503)

    def virtual_card(routing: RoutingSpec, name: str) -> dict[str, Any]:
        virtual = routing.models[name]
        targets = dict.fromkeys([*(t for r in virtual.rules for t in r.to), *virtual.default])
        return {
            "id": name,
            "object": "model",
            "created": int(config.started),
            "owned_by": "ops-router",
            "ready": any(table.state(t) == ModelState.READY for t in targets),
            "routes_to": list(targets),
            # It may send a request away (private ones never are).
            "remote": any(remote(t) for t in targets),
        }

    async def models(request: Request) -> Response:
        authorised(request)
        cards = [model_card(a) for a in table.names()]
        if router is not None:
            cards += [virtual_card(router.spec, n) for n in router.names]
        return JSONResponse({"object": "list", "data": cards})

    async def metrics(request: Request) -> Response:
        authorised(request, admin=True)
        return JSONResponse({"routing": dict(router.counts) if router else {}})

    async def model(request: Request) -> Response:
        authorised(request)
        route = table.resolve(request.path_params["model"])
        if route is None:
            known = ", ".join(table.names()) or "none"
            raise GatewayError(
                404,
                f"model {request.path_params['model']!r} not found; known models: {known}",
                code="model_not_found",
            )
        return JSONResponse(model_card(route.alias))

    async def chat(request: Request) -> Response:
        authorised(request)
        body = await read_json(request)
        validate.chat(body)
        if router is not None and isinstance(body.get("model"), str) and router.is_virtual(body["model"]):
            if not isinstance(body.get("messages"), list) or not body["messages"]:
                raise GatewayError(400, "`messages` must be a non-empty list")
            return await routed(body["model"], body, request)
        route = route_for(body, "chat")
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            raise GatewayError(400, "`messages` must be a non-empty list")
        keep_private(route, body, request)
        _fill_max_tokens(body, config.default_max_tokens, route.context)
        _fill_defaults(body, route)
        _strip_tools(body, route)
        return await forward(route, "/chat/completions", body)

    async def embeddings(request: Request) -> Response:
        authorised(request)
        body = await read_json(request)
        validate.embeddings(body)
        if not any(r.task == "embeddings" for r in table.routes.values()):
            raise GatewayError(
                404,
                "no embeddings model is served by this stack (add one with `task: embeddings`)",
                code="model_not_found",
            )
        route = route_for(body, "embeddings")
        keep_private(route, body, request)
        return await forward(route, "/embeddings", body)

    async def admin(request: Request) -> Response:
        authorised(request, admin=True)
        alias, action = request.path_params["model"], request.path_params["action"]
        if control is None:
            raise GatewayError(404, "this gateway has no model control")
        route = table.resolve(alias)
        if route is None:
            raise GatewayError(
                404,
                f"model {alias!r} not found; known models: {', '.join(table.names())}",
                code="model_not_found",
            )
        if action not in ("load", "unload"):
            raise GatewayError(404, f"unknown action {action!r}: use load or unload")
        await control(route.alias, action)
        return JSONResponse(model_card(route.alias))

    async def on_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GatewayError)
        return error_response(exc.status, exc.message, exc.kind, exc.code)

    async def on_invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, validate.InvalidBody)
        return error_response(400, exc.message, code=exc.code, param=exc.param)

    async def on_crash(request: Request, exc: Exception) -> Response:
        return error_response(500, f"internal error ({type(exc).__name__})", "server_error", "internal_error")

    async def on_disconnect(request: Request, exc: Exception) -> Response:
        return Response(status_code=499)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error_response(
            exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", code="not_found"
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await upstreams.aclose()

    app = Starlette(
        routes=[
            HttpRoute("/health", health, methods=["GET"]),
            HttpRoute("/v1/models", models, methods=["GET"]),
            HttpRoute("/v1/models/{model:path}", model, methods=["GET"]),
            HttpRoute("/v1/chat/completions", chat, methods=["POST"]),
            HttpRoute("/v1/embeddings", embeddings, methods=["POST"]),
            HttpRoute("/ops/models/{model}/{action}", admin, methods=["POST"]),
            HttpRoute("/ops/metrics", metrics, methods=["GET"]),
        ],
        exception_handlers={
            GatewayError: on_error,
            validate.InvalidBody: on_invalid,
            ClientDisconnect: on_disconnect,
            HTTPException: on_http,
            Exception: on_crash,
        },
        middleware=[Middleware(CancelOnDisconnect)],
        lifespan=lifespan,
    )
    app.state.table = table
    return app


def _strip_tools(body: dict[str, Any], route: Route) -> None:
    """Drop tool schemas for a model that cannot call tools.

    Open WebUI offers its ~36 built-in tools (26 KB of schemas) with every chat; a model that
    cannot call tools would only see its context overflow.
    """
    if not route.tools and body.get("tools"):
        for key in ("tools", "tool_choice", "parallel_tool_calls"):
            body.pop(key, None)


def _fill_defaults(body: dict[str, Any], route: Route) -> None:
    """The model's sampling defaults, for the settings the client did not send."""
    for key, value in route.defaults:
        if body.get(key) is None:
            body[key] = value


def _fill_max_tokens(body: dict[str, Any], default: int, context: int | None) -> None:
    """Supply ``max_tokens`` when the client sent none (Foundry rejects such requests); cap at the context."""
    keys = [k for k in ("max_tokens", "max_completion_tokens") if body.get(k) is not None]
    for key in keys:
        if not isinstance(body[key], int) or isinstance(body[key], bool) or body[key] < 1:
            raise GatewayError(400, f"`{key}` must be a positive integer", code="invalid_value")
    if not keys:
        body["max_tokens"] = default
        keys = ["max_tokens"]
    if context:
        for key in keys:
            body[key] = min(body[key], context)
