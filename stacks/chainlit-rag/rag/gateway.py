"""The stack's OpenAI-compatible gateway, as the app uses it: the model list and streamed chat.

Every failure becomes a :class:`GatewayError` whose message can be shown in the chat as it is:
the app stays up when the gateway is down, and says so.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass

import httpx

#: Connecting should be instant on one machine; an answer may take long on a big model.
TIMEOUT = httpx.Timeout(120.0, connect=5.0)
#: Marks a request private: the gateway never sends it to a model that leaves the machine.
PRIVATE_HEADER = {"x-ops-private": "true"}
#: The workshop participant a request is for: the gateway counts and shares the models by it (it
#: trusts the header only with a service's key, which the app has).
USER_HEADER = "x-ops-user"
#: The participant whose question is being answered ("" for the workshop account). Set once per
#: message; every gateway request made for it, in threads too (``asyncio.to_thread`` copies the
#: context), names them.
CALLER: ContextVar[str] = ContextVar("caller", default="")
log = logging.getLogger("rag.gateway")


def caller_headers() -> dict[str, str]:
    """``X-Ops-User`` for the current participant, or nothing."""
    who = CALLER.get()
    return {USER_HEADER: who} if who else {}


class GatewayError(Exception):
    """The gateway did not give what was asked; the message is fit for the user."""


@dataclass(frozen=True)
class ModelCard:
    """One model the gateway lists."""

    id: str
    task: str = "chat"
    context_length: int | None = None
    ready: bool = True
    #: Requests to it leave the machine (a gateway that does not say is taken at its worst).
    remote: bool = True


def local_only(cards: list[ModelCard], allow_remote: bool) -> list[ModelCard]:
    """The cards the app may use: all of them when remote models are allowed, else the local ones."""
    return list(cards) if allow_remote else [c for c in cards if not c.remote]


def _cards(payload: dict) -> list[ModelCard]:
    cards = []
    for item in payload.get("data", []):
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            cards.append(
                ModelCard(
                    item["id"],
                    str(item.get("task") or "chat"),
                    item.get("context_length") if isinstance(item.get("context_length"), int) else None,
                    item.get("ready", True) is not False,
                    item.get("remote", True) is not False,
                )
            )
    return cards


def _problem(base_url: str, exc: Exception) -> GatewayError:
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
        return GatewayError("The model took too long to answer. Try again, or pick a smaller model.")
    return GatewayError(
        f"The model gateway ({base_url}) cannot be reached right now, so no answer can be written. "
        "The app keeps running: try again in a moment (`ops host status` shows whether the model host runs)."
    )


def _http_problem(status: int, body: str, model: str = "") -> GatewayError:
    try:
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = body[:200]
    if status == 401:
        return GatewayError("The gateway refused this app's key: the stack needs `ops up` again.")
    if status == 403 and model:
        return GatewayError(
            f"The model `{model}` leaves this machine, and this app keeps the documents here ({message}). "
            "Pick a local model, or set RAG_ALLOW_REMOTE_MODELS=true for the app."
        )
    if status == 404 and model:
        return GatewayError(f"The model `{model}` is not served any more ({message}). Pick another model.")
    if status == 503:
        return GatewayError(f"The model `{model}` is not ready yet ({message}). Try again shortly.")
    return GatewayError(f"The gateway answered HTTP {status}: {message}")


class Gateway:
    """A client of ``BASE_URL`` (``.../v1``) with the stack's bearer key.

    ``private``: mark every request private (``x-ops-private: true``): the gateway then refuses to
    send it to a model that leaves the machine, and routes a virtual model to local ones only.
    """

    def __init__(self, base_url: str, key: str, timeout: httpx.Timeout = TIMEOUT, private: bool = True):
        self.base_url = base_url.rstrip("/")
        self.headers = {"authorization": f"Bearer {key}", **(PRIVATE_HEADER if private else {})}
        self.timeout = timeout

    def _headers(self) -> dict[str, str]:
        return {**self.headers, **caller_headers()}

    async def sign_in(self, username: str, password: str) -> str | None:
        """The participant these credentials sign in, as the gateway says (``POST /ops/v1/signin``), or None.

        The gateway checks them against the stack's secrets store; a removed participant is refused
        from the next sign-in. A gateway that cannot be reached signs nobody in.
        """
        root = self.base_url.removesuffix("/v1")
        try:
            async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0)) as client:
                response = await client.post(
                    f"{root}/ops/v1/signin",
                    json={"username": username, "password": password},
                    headers={"authorization": self.headers["authorization"]},
                )
        except httpx.HTTPError as exc:
            log.warning("participant sign-in: the gateway cannot be reached (%s)", type(exc).__name__)
            return None
        if response.status_code != 200:
            if response.status_code != 401:
                log.warning("participant sign-in: the gateway answered HTTP %s", response.status_code)
            return None
        try:
            name = response.json().get("participant")
        except (ValueError, AttributeError):
            return None
        return name if isinstance(name, str) and name else None

    def models_sync(self) -> list[ModelCard]:
        """The listed models (for the ingest, which runs outside the event loop)."""
        try:
            response = httpx.get(f"{self.base_url}/models", headers=self.headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise _problem(self.base_url, exc) from None
        if response.status_code != 200:
            raise _http_problem(response.status_code, response.text)
        return _cards(response.json())

    async def models(self) -> list[ModelCard]:
        """The listed models."""
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.get(f"{self.base_url}/models", headers=self._headers())
        except httpx.HTTPError as exc:
            raise _problem(self.base_url, exc) from None
        if response.status_code != 200:
            raise _http_problem(response.status_code, response.text)
        return _cards(response.json())

    async def stream(
        self, model: str, messages: list[dict], max_tokens: int, temperature: float = 0.0
    ) -> AsyncIterator[str]:
        """The answer's text pieces as the model writes them.

        ``temperature`` is always sent: a request without one gets the gateway's default for the
        model, or Foundry's (1.0), at which a small model's answer drifts into noise.
        """
        body = {
            "model": model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        try:
            async with (
                httpx.AsyncClient(timeout=self.timeout) as client,
                client.stream(
                    "POST", f"{self.base_url}/chat/completions", json=body, headers=self._headers()
                ) as response,
            ):
                if response.status_code != 200:
                    raise _http_problem(
                        response.status_code, (await response.aread()).decode(errors="replace"), model
                    )
                done = False
                # Read to the end even after [DONE]: leaving the stream early closes httpcore's
                # generator from the outside, which it reports as an error.
                async for line in response.aiter_lines():
                    piece = None if done else _piece(line)
                    done = done or piece is None
                    if piece:
                        yield piece
        except httpx.HTTPError as exc:
            raise _problem(self.base_url, exc) from None


def _piece(line: str) -> str | None:
    """The text of one SSE line: '' for nothing, None at the end of the stream."""
    if not line.startswith("data:"):
        return ""
    data = line[5:].strip()
    if data == "[DONE]":
        return None
    try:
        event = json.loads(data)
    except ValueError:
        return ""
    if isinstance(event, dict) and event.get("error"):
        message = event["error"].get("message") if isinstance(event["error"], dict) else event["error"]
        raise GatewayError(f"The model stopped with an error: {message}")
    choices = event.get("choices") or [{}]
    return (choices[0].get("delta") or {}).get("content") or ""
