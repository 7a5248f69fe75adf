"""Talking to upstreams: send a request, and turn the answer into the client's response, streaming as it comes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, Protocol

import httpx
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from ops.gateway.table import Route


class UpstreamFailed(Exception):
    """An upstream did not answer usefully (unreachable, too slow, 5xx or 429): try the next route."""


def error_response(
    status: int,
    message: str,
    kind: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> JSONResponse:
    """``{"error": {"message", "type", "param", "code"}}`` with ``status``."""
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


def upstream_error(alias: str, status: int, data: object) -> JSONResponse:
    """An upstream's error in OpenAI's shape: its own 4xx as is, a 5xx (its failure, not the client's) as 502."""
    error = data.get("error") if isinstance(data, dict) else None
    detail = error.get("message") if isinstance(error, dict) else error if isinstance(error, str) else None
    message = f"upstream for {alias!r} answered HTTP {status}" + (f": {detail}" if detail else "")
    if status >= 500:
        return error_response(502, message, "api_error", "upstream_error")
    if (
        isinstance(error, dict)
        and isinstance(error.get("message"), str)
        and isinstance(error.get("type"), str)
    ):
        shaped = {"message": error["message"], "type": error["type"]}
        return JSONResponse(
            {"error": {**shaped, "param": error.get("param"), "code": error.get("code")}}, status_code=status
        )
    return error_response(status, message, code="upstream_error")


class Watch(Protocol):
    """Looks at an answer on its way to the client (:class:`ops.gateway.exchange.Exchange`)."""

    def relay(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """A stream's chunks, passed on."""
        ...

    def answered(self, data: object) -> None:
        """A whole JSON answer."""

    def ended(self) -> None:
        """A stream ended: sent whole, or its client left."""


class Relayed(StreamingResponse):
    """A streamed answer that, however it ends (sent, client gone, cancelled), closes its upstream and says so."""

    def __init__(
        self, body: AsyncIterator[bytes], upstream: httpx.Response, watch: Watch | None, headers: dict
    ):
        super().__init__(body, media_type="text/event-stream", headers=headers)
        self.upstream, self.watch = upstream, watch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                aclose = getattr(self.body_iterator, "aclose", None)
                if aclose is not None:  # a generator left at a yield when its client went away
                    await aclose()
                await self.upstream.aclose()
            finally:
                if self.watch is not None:
                    self.watch.ended()


class Upstreams:
    """One shared HTTP client for every upstream."""

    def __init__(self, timeout: float):
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=5.0),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        )

    async def send(
        self, route: Route, path: str, body: dict[str, Any], first_byte: float | None = None
    ) -> httpx.Response:
        """POST ``body`` to ``route``; the answer's headers are in, its body still streams.

        Raises :class:`UpstreamFailed` when it cannot be reached or (with ``first_byte``) is too slow.
        """
        headers = {"content-type": "application/json"}
        if route.api_key is not None:
            headers["authorization"] = f"Bearer {route.api_key.reveal()}"
        request = self.client.build_request(
            "POST",
            f"{route.base_url}{path}",
            content=json.dumps({**body, "model": route.model_id}),
            headers=headers,
        )
        try:
            if first_byte is None:
                return await self.client.send(request, stream=True)
            return await asyncio.wait_for(self.client.send(request, stream=True), first_byte)
        except TimeoutError:
            raise UpstreamFailed(f"{route.alias}: no answer within {first_byte:g} s") from None
        except httpx.HTTPError as exc:
            raise UpstreamFailed(f"{route.alias}: unreachable ({type(exc).__name__})") from None

    async def respond(
        self,
        route: Route,
        upstream: httpx.Response,
        stream: bool,
        headers: dict[str, str] | None = None,
        watch: Watch | None = None,
    ) -> Response:
        """The client's response: chunks passed through as they arrive, or the JSON with our alias.

        ``watch`` sees the chunks or the JSON; it is told when a stream ends (a JSON answer's end is
        the caller's to tell, once this returns).
        """
        headers = headers or {}
        if stream and upstream.status_code == 200:
            # Pass chunks through as they arrive; close the upstream when the client goes away.
            chunks = upstream.aiter_raw()
            return Relayed(
                watch.relay(chunks) if watch is not None else chunks,
                upstream,
                watch,
                {"cache-control": "no-cache", "x-accel-buffering": "no", **headers},
            )
        try:
            raw = await upstream.aread()
        finally:
            await upstream.aclose()
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            return error_response(
                502,
                f"upstream for {route.alias!r} answered non-JSON (HTTP {upstream.status_code})",
                "api_error",
            )
        if upstream.status_code >= 400:
            return upstream_error(route.alias, upstream.status_code, data)
        if watch is not None:
            watch.answered(data)
        if isinstance(data, dict) and upstream.status_code == 200 and "model" in data:
            data["model"] = route.alias
        return JSONResponse(data, status_code=upstream.status_code, headers=headers)

    async def aclose(self) -> None:
        """Close the shared client."""
        await self.client.aclose()
