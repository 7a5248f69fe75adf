"""Chat and embeddings requests: find the model, keep private requests home, share, forward, measure.

Each request that got past the key check becomes an :class:`~ops.gateway.exchange.Exchange`:
it is refused if its participant used their hour's tokens (:mod:`ops.gateway.quotas`), waits for
a slot of its model (:mod:`ops.gateway.sharing`), is forwarded, and is recorded once when its
answer has been sent, refused, or its client left.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from ops.gateway import validate
from ops.gateway.callers import Caller
from ops.gateway.config import GatewayConfig
from ops.gateway.errors import GatewayError, too_many
from ops.gateway.exchange import Exchange, ask_usage
from ops.gateway.quotas import Quotas
from ops.gateway.routing import Privacy, Router
from ops.gateway.sharing import QueueFull, Sharing
from ops.gateway.table import ModelState, ModelTable, Route
from ops.gateway.upstream import Relayed, UpstreamFailed, Upstreams


class Inference:
    """The OpenAI routes that run a model: ``/v1/chat/completions`` and ``/v1/embeddings``."""

    def __init__(
        self,
        table: ModelTable,
        config: GatewayConfig,
        upstreams: Upstreams,
        router: Router | None,
        privacy: Privacy,
    ):
        self.table, self.config, self.upstreams = table, config, upstreams
        self.router, self.privacy = router, privacy
        self.meter = config.meter
        self.sharing = Sharing(config.sharing, self._slots_of, config.meter)
        seed = config.meter.tokens_since(config.started - 3600) if config.tokens_per_hour else {}
        self.quotas = Quotas(config.tokens_per_hour, seed)

    def _slots_of(self, alias: str) -> int | None:
        route = self.table.routes.get(alias)
        return route.slots if route is not None else None

    async def read_json(self, request: Request) -> dict[str, Any]:
        """The request's JSON body, at most ``max_body_bytes``."""
        limit = self.config.max_body_bytes
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            raise GatewayError(413, f"request body over {limit} bytes", code="request_too_large")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise GatewayError(413, f"request body over {limit} bytes", code="request_too_large")
            chunks.append(chunk)
        return validate.parse(b"".join(chunks))

    def route_for(self, body: dict[str, Any], task: str) -> Route:
        """The ready model ``body`` asks for, serving ``task``."""
        table = self.table
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

    def keep_private(self, route: Route, body: dict[str, Any], request: Request) -> None:
        """Refuse (never forward) a private request to a model whose requests leave the machine."""
        if not route.remote:
            return
        reason = self.privacy.reason(body, dict(request.headers))
        if not reason:
            return
        local = [a for a, r in self.table.routes.items() if not r.remote and r.task == route.task]
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

    async def measured(
        self, caller: Caller, task: str, work: Callable[[Exchange], Awaitable[Response]]
    ) -> Response:
        """Run ``work`` as one metered exchange, finished however it ends (a stream: when it has been sent)."""
        exchange = Exchange(self.meter, caller, task, spent=self.quotas.add)
        try:
            response = await work(exchange)
        except GatewayError as exc:
            exchange.finish(exc.status)
            raise
        except validate.InvalidBody:
            exchange.finish(400)
            raise
        except (asyncio.CancelledError, ClientDisconnect):
            exchange.finish(499)
            raise
        except BaseException:
            exchange.finish(500)
            raise
        if not isinstance(response, Relayed):
            exchange.finish(response.status_code)
        return response

    async def take_slot(self, exchange: Exchange, alias: str) -> None:
        """Wait for a slot of ``alias`` for this caller; 429 when its queue is full."""
        try:
            slot = await self.sharing.acquire(alias, exchange.caller.id)
        except QueueFull as exc:
            raise too_many(
                f"{exc}; try again in a moment (gateway.sharing.queue)", "queue_full", exc.retry_after
            ) from None
        exchange.hold(slot, alias)

    async def read_body(
        self, request: Request, exchange: Exchange, check: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]:
        """The request's JSON body, its model named on the exchange (for the record) before ``check``."""
        body = await self.read_json(request)
        if isinstance(body.get("model"), str):
            exchange.model = body["model"]
        check(body)
        exchange.body = body
        return body

    async def chat(self, request: Request, caller: Caller) -> Response:
        """``POST /v1/chat/completions``."""

        async def work(exchange: Exchange) -> Response:
            body = await self.read_body(request, exchange, validate.chat)
            if self.router is not None and self.router.is_virtual(exchange.model):
                _need_messages(body)
                self.quotas.check(caller.id)
                if body.get("stream"):
                    exchange.keep_usage = ask_usage(body)
                return await self.routed(exchange.model, body, request, exchange)
            route = self.route_for(body, "chat")
            exchange.model = route.alias
            _need_messages(body)
            self.keep_private(route, body, request)
            self.quotas.check(caller.id)
            _fill_max_tokens(body, self.config.default_max_tokens, route.context)
            _fill_defaults(body, route)
            _strip_tools(body, route)
            if body.get("stream"):
                exchange.keep_usage = ask_usage(body)
            return await self.forward(route, "/chat/completions", body, exchange)

        return await self.measured(caller, "chat", work)

    async def embeddings(self, request: Request, caller: Caller) -> Response:
        """``POST /v1/embeddings``."""

        async def work(exchange: Exchange) -> Response:
            body = await self.read_body(request, exchange, validate.embeddings)
            if not any(r.task == "embeddings" for r in self.table.routes.values()):
                raise GatewayError(
                    404,
                    "no embeddings model is served by this stack (add one with `task: embeddings`)",
                    code="model_not_found",
                )
            route = self.route_for(body, "embeddings")
            exchange.model = route.alias
            self.keep_private(route, body, request)
            self.quotas.check(caller.id)
            return await self.forward(route, "/embeddings", body, exchange)

        return await self.measured(caller, "embeddings", work)

    async def forward(self, route: Route, path: str, body: dict[str, Any], exchange: Exchange) -> Response:
        """Send ``body`` to ``route`` once a slot is free; the answer, streamed or whole."""
        await self.take_slot(exchange, route.alias)
        try:
            upstream = await self.upstreams.send(route, path, body)
        except UpstreamFailed as exc:
            raise GatewayError(502, f"upstream {exc}", kind="api_error") from None
        return await self.upstreams.respond(route, upstream, bool(body.get("stream")), watch=exchange)

    async def routed(self, name: str, body: dict[str, Any], request: Request, exchange: Exchange) -> Response:
        """A virtual model: try the rule's candidates in order, falling back on failure (tenacity)."""
        router = self.router
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
        busy: list[float] = []

        async def attempt_once(alias: str) -> tuple[Route, httpx.Response]:
            route = self.table.resolve(alias)
            if route is None or self.table.state(route.alias) != ModelState.READY:
                raise UpstreamFailed(f"{alias}: not ready")
            if decision.features.private and route.remote:  # decide() removed them; never send one anyway
                raise UpstreamFailed(f"{alias}: remote, and the request is private")
            candidate = dict(body)
            _fill_max_tokens(candidate, self.config.default_max_tokens, route.context)
            _fill_defaults(candidate, route)
            _strip_tools(candidate, route)
            try:  # each candidate is shared as the model it is: the slot is that model's
                slot = await self.sharing.acquire(route.alias, exchange.caller.id)
            except QueueFull as exc:
                busy.append(exc.retry_after)
                raise UpstreamFailed(f"{alias}: busy ({exc.waiting} waiting)") from None
            try:
                upstream = await self.upstreams.send(route, "/chat/completions", candidate, first_byte)
                if upstream.status_code >= 500 or upstream.status_code == 429:
                    await upstream.aclose()
                    raise UpstreamFailed(f"{alias}: HTTP {upstream.status_code}")
            except BaseException:
                slot.release()
                raise
            exchange.hold(slot, route.alias)
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
            if len(busy) == len(failures):
                raise too_many(
                    f"every model {name!r} routes to is busy: {'; '.join(failures)}", "queue_full", min(busy)
                ) from None
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
        return await self.upstreams.respond(
            route, upstream, bool(body.get("stream")), headers, watch=exchange
        )


def _need_messages(body: dict[str, Any]) -> None:
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise GatewayError(400, "`messages` must be a non-empty list")


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
