"""The gateway's HTTP application (Starlette), proxying to upstreams with httpx.

Who asks is :mod:`ops.gateway.callers`; the routes that run a model are :mod:`ops.gateway.inference`
(sharing, quotas and metering included); this module wires the routes, the model cards, the admin
routes and the error handlers.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as HttpRoute

from ops.gateway import validate
from ops.gateway.callers import Callers
from ops.gateway.config import GatewayConfig
from ops.gateway.disconnect import CancelOnDisconnect
from ops.gateway.errors import GatewayError
from ops.gateway.inference import Inference, _fill_max_tokens
from ops.gateway.routing import Privacy, Router
from ops.gateway.table import ModelState, ModelTable
from ops.gateway.upstream import Upstreams, error_response
from ops.profiles.schema import RoutingSpec

#: Called by the admin routes to load or unload a model in the host; returns when done.
Control = Callable[[str, str], Awaitable[None]]

__all__ = ["Control", "GatewayConfig", "GatewayError", "_fill_max_tokens", "create_app"]


def create_app(table: ModelTable, config: GatewayConfig, control: Control | None = None) -> Starlette:
    """The gateway application for ``table``; ``control`` enables the load/unload admin routes."""
    upstreams = Upstreams(config.upstream_timeout)

    def remote(name: str) -> bool:
        """True when requests to ``name`` leave the machine (and for a name not known yet: fail closed)."""
        route = table.resolve(name)
        return route.remote if route is not None else True

    router = Router(config.routing, remote=remote) if config.routing else None
    privacy = router.privacy if router else Privacy(config.private_patterns)
    callers = Callers(config.stack, config.key, config.service_key, config.participants)
    inference = Inference(table, config, upstreams, router, privacy)

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
        callers.identify(request)
        cards = [model_card(a) for a in table.names()]
        if router is not None:
            cards += [virtual_card(router.spec, n) for n in router.names]
        return JSONResponse({"object": "list", "data": cards})

    async def metrics(request: Request) -> Response:
        callers.identify(request, admin=True)
        return JSONResponse({"routing": dict(router.counts) if router else {}})

    async def prometheus(request: Request) -> Response:
        # The stack key only, not "loopback only": the room's clients come through the host's local
        # TLS proxy (expose:) and look like loopback.
        callers.identify(request, admin=True)
        render = getattr(config.meter, "render", None)
        if render is None:  # NullMeter: a gateway without a state folder (unit tests)
            raise GatewayError(404, "this gateway keeps no metrics", code="not_found")
        body, content_type = render(request.headers.get("accept", ""))
        return Response(body, headers={"content-type": content_type})

    async def model(request: Request) -> Response:
        callers.identify(request)
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
        return await inference.chat(request, callers.identify(request))

    async def embeddings(request: Request) -> Response:
        return await inference.embeddings(request, callers.identify(request))

    async def signin(request: Request) -> Response:
        """The Chainlit app checks a participant's name and password here (with its service key)."""
        callers.identify(request, admin=True, services_too=True)
        raw = await request.body()
        try:
            body = json.loads(raw) if len(raw) <= 4096 else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise GatewayError(400, 'send {"username": ..., "password": ...}', code="invalid_body")
        name = callers.sign_in(body.get("username"), body.get("password"))
        if name is None:
            raise GatewayError(401, "wrong user name or password", code="invalid_credentials")
        return JSONResponse({"participant": name})

    async def admin(request: Request) -> Response:
        callers.identify(request, admin=True)
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
        response = error_response(exc.status, exc.message, exc.kind, exc.code)
        response.headers.update(exc.headers)
        return response

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
            HttpRoute("/metrics", prometheus, methods=["GET"]),
            HttpRoute("/ops/v1/signin", signin, methods=["POST"]),
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
    app.state.inference = inference
    return app
