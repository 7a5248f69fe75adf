"""Chainlit RAG: wired to the gateway, signed in with a password from the secrets store, checked over Socket.IO.

Chainlit has no REST route for chatting: a client signs in (``POST /login`` sets the
``access_token`` cookie), opens Socket.IO at ``/ws/socket.io`` with that cookie and a session id,
says ``connection_successful`` (which starts the chat), emits ``client_message``, and receives
``stream_start`` / ``stream_token`` (the answer, token by token), ``new_message`` (the finished
answer, with the app's metadata: model and sources), ``element`` (each cited passage) and
``task_end``. :class:`ChatClient` speaks exactly that, for ``ops up``'s chain check and the tests.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from ops.errors import OpsError
from ops.secrets import Secret, token

KIND = RECIPE = "chainlit-rag"
USERNAME = "workshop"
PASSWORD = "chainlit-rag-password"
AUTH_SECRET = "chainlit-auth-secret"
#: The chain's question: the sample corpus answers it (rag.md), and any corpus gives passages for it.
CHAIN_QUESTION = "How are the documents split into passages, and how are the two searches combined?"


def credentials(ctx) -> tuple[str, Secret]:
    """The app's user name and its generated password (kept in the stack's secrets store)."""
    return USERNAME, ctx.secrets.get_or_create(PASSWORD, lambda: token(18))


def environment(ctx) -> dict[str, str | Secret]:
    """Environment for the Chainlit RAG container: the gateway, the models, password sign-in."""
    username, password = credentials(ctx)
    return {
        "OPENAI_BASE_URL": ctx.gateway_url,
        "OPENAI_API_KEY": ctx.gateway_key,
        # A preference order; the app asks the gateway which of them (and which others) are served.
        "RAG_MODELS": ",".join(ctx.models),
        "RAG_AUTH": "password",
        "RAG_USERNAME": username,
        "RAG_PASSWORD": password,
        # Signs Chainlit's session tokens; stable, so sign-ins survive a restart.
        "CHAINLIT_AUTH_SECRET": ctx.secrets.get_or_create(AUTH_SECRET, lambda: token(48)),
        "HF_HUB_OFFLINE": "1",
        # Exposed to the room: its https origin may use the app too (the app also allows its own Host).
        **({"RAG_ALLOWED_ORIGINS": ctx.public_url} if ctx.public_url else {}),
    }


def sign_in_credentials(ctx) -> dict[str, str | Secret]:
    """The app's sign-in, for ``ops credentials``."""
    username, password = credentials(ctx)
    return {"user": username, "password": password}


def sign_in(
    base_url: str, username: str, password: Secret, timeout: float = 30, verify: str | bool = True
) -> dict[str, str]:
    """Sign in through Chainlit's ``POST /login``; return the session cookies.

    ``verify``: for an https URL, the CA file to trust (the stack's, on the exposed address).
    """
    try:
        response = httpx.post(
            f"{base_url}/login",
            data={"username": username, "password": password.reveal()},
            timeout=timeout,
            verify=_trust(verify),
        )
    except httpx.HTTPError as exc:
        raise OpsError(
            f"cannot reach the Chainlit app at {base_url}: {exc}", hint="see `ops logs PROFILE chainlit-rag`"
        ) from None
    if response.status_code != 200 or not response.cookies:
        raise OpsError(
            f"the Chainlit app refused the generated sign-in (HTTP {response.status_code}: {response.text[:120]})",
            hint="the container may run with another password: `ops up PROFILE` re-creates it from the secrets store",
        )
    return dict(response.cookies)


def chat_profiles(
    base_url: str, cookies: dict[str, str], timeout: float = 30, verify: str | bool = True
) -> tuple[str, ...]:
    """The chat profiles (one per model) the app offers this user."""
    response = httpx.get(
        f"{base_url}/project/settings", cookies=cookies, timeout=timeout, verify=_trust(verify)
    )
    if response.status_code != 200:
        raise OpsError(
            f"the Chainlit app's settings answered HTTP {response.status_code}", hint=response.text[:200]
        )
    return tuple(p["name"] for p in response.json().get("chatProfiles") or [])


@dataclass
class Answer:
    """One answer as a browser would have seen it."""

    text: str
    tokens: list[str]
    model: str
    sources: list[dict]
    elements: list[str]
    notices: list[str]
    metadata: dict = field(default_factory=dict)

    @property
    def source_docs(self) -> list[str]:
        """The cited files, best first."""
        return [s["doc"] for s in self.sources]


def _trust(verify: str | bool):
    """httpx's ``verify``: a CA file becomes an SSL context (a path string is deprecated there)."""
    if isinstance(verify, str):
        import ssl

        return ssl.create_default_context(cafile=verify)
    return verify


class ChatClient:
    """One signed-in chat session over Chainlit's Socket.IO protocol (python-socketio client).

    Its WebSocket says it comes from the app's own page (``Origin``: the URL's scheme, host and
    port), as a browser's does, or from ``origin``; ``verify`` is the CA file to trust for https.
    """

    def __init__(
        self,
        base_url: str,
        cookies: dict[str, str],
        profile: str | None = None,
        timeout: float = 120,
        verify: str | bool = True,
        origin: str | None = None,
    ):
        import requests
        import socketio

        self.base_url = base_url
        self.timeout = timeout
        self._events: list[tuple[str, dict]] = []
        self._changed = threading.Condition()
        session = requests.Session()
        session.verify = verify  # engine.io hands a CA file on to its WebSocket too
        # The WebSocket says Origin: its own scheme://host:port unless told otherwise (``origin``).
        extra = {"origin": origin} if origin else {}
        self._sio = socketio.Client(reconnection=False, http_session=session, websocket_extra_options=extra)
        for name in (
            "stream_start",
            "stream_token",
            "new_message",
            "update_message",
            "element",
            "task_start",
            "task_end",
        ):
            self._sio.on(name, self._recorder(name))
        self._cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        self._auth = {
            "sessionId": str(uuid.uuid4()),
            "clientType": "webapp",
            "chatProfile": profile,
            "threadId": None,
            "userEnv": "{}",
        }

    def _recorder(self, name: str):
        def record(data=None):
            with self._changed:
                self._events.append((name, data if isinstance(data, dict) else {}))
                self._changed.notify_all()

        return record

    def __enter__(self) -> ChatClient:
        import socketio

        try:
            self._sio.connect(
                self.base_url,
                socketio_path="/ws/socket.io",
                headers={"Cookie": self._cookie},
                auth=self._auth,
                transports=["websocket"],
                wait_timeout=self.timeout,
            )
        except socketio.exceptions.ConnectionError as exc:
            raise OpsError(
                f"Chainlit refused the Socket.IO connection: {exc}", hint="sign in again"
            ) from None
        mark = len(self._events)
        # The browser says this once connected. Chainlit answers with task_end, then runs the app's
        # on_chat_start as a task of its own (task_start ... task_end): the chat is ready after it.
        self._sio.emit("connection_successful")
        ready = self._wait_for("task_end", mark, "the connection to be accepted")
        started = self._wait_for("task_start", ready + 1, "the chat to start")
        self._wait_for("task_end", started, "the chat to start")
        return self

    def __exit__(self, *exc_info) -> None:
        self._sio.disconnect()

    def set_model(self, model: str) -> None:
        """Choose another model in the chat settings, as the settings panel does."""
        self._sio.emit("chat_settings_change", {"model": model})

    def ask(self, question: str) -> Answer:
        """Send ``question``; wait for the whole answer; return it."""
        mark = len(self._events)
        message = {
            "id": str(uuid.uuid4()),
            "threadId": "",
            "name": USERNAME,
            "type": "user_message",
            "output": question,
            "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        self._sio.emit("client_message", {"message": message, "fileReferences": None})
        # Done when the finished answer (not a notice) has come, and then the task's end.
        answered = self._wait_for("new_message", mark, "the answer", _is_reply)
        self._wait_for("task_end", answered, "the end of the answer")
        return self._answer(self._events[mark:])

    def _wait_for(self, name: str, after: int, what: str, where=lambda _data: True) -> int:
        """Index of the first event ``name`` (whose data passes ``where``) at or after position ``after``."""

        def found() -> int | None:
            return next(
                (
                    i
                    for i in range(after, len(self._events))
                    if self._events[i][0] == name and where(self._events[i][1])
                ),
                None,
            )

        with self._changed:
            if not self._changed.wait_for(lambda: found() is not None, timeout=self.timeout):
                seen = ", ".join(n for n, _ in self._events[after:]) or "nothing"
                raise OpsError(
                    f"waited {self.timeout:g} s for {what} over Socket.IO; received: {seen}",
                    hint="see `ops logs PROFILE chainlit-rag`",
                )
            index = found()
            assert index is not None  # wait_for saw it, and events are only ever appended
            return index

    @staticmethod
    def _answer(events: list[tuple[str, dict]]) -> Answer:
        finished = [d for n, d in events if n == "new_message" and d.get("type") == "assistant_message"]
        notices = [d.get("output", "") for d in finished if (d.get("metadata") or {}).get("notice")]
        replies = [d for d in finished if _is_reply(d)]
        if not replies:
            raise OpsError("the Chainlit app sent no answer", hint="see `ops logs PROFILE chainlit-rag`")
        reply = replies[-1]
        tokens = []
        for name, data in events:
            if data.get("id") == reply["id"] and name == "stream_start":
                tokens.append(data.get("output", ""))
            elif data.get("id") == reply["id"] and name == "stream_token":
                tokens.append(data.get("token", ""))
        metadata = reply.get("metadata") or {}
        elements = [d.get("name", "") for n, d in events if n == "element" and d.get("forId") == reply["id"]]
        return Answer(
            text=reply.get("output", ""),
            tokens=tokens,
            model=metadata.get("model", ""),
            sources=list(metadata.get("sources") or []),
            elements=elements,
            notices=notices,
            metadata=metadata,
        )


def _chat_models(ctx) -> tuple[str, ...]:
    """The stack's models minus its embeddings models (which the app uses but does not offer)."""
    try:
        listed = httpx.get(
            f"{ctx.local_gateway_url}/models",
            headers={"authorization": f"Bearer {ctx.gateway_key.reveal()}"},
            timeout=10,
        ).json()["data"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return ctx.models  # the app's own list is then checked against every model
    embeddings = {m.get("id") for m in listed if isinstance(m, dict) and m.get("task") == "embeddings"}
    return tuple(m for m in ctx.models if m not in embeddings)


def _is_reply(data: dict) -> bool:
    """A finished assistant message that is not one of the app's notices."""
    return data.get("type") == "assistant_message" and not (data.get("metadata") or {}).get("notice")


def chain(ctx, base_url: str, timeout: float):
    """Sign in, see the models as chat profiles, and get one streamed answer with its sources."""
    from ops.services import ChainReport

    username, password = credentials(ctx)
    cookies = sign_in(base_url, username, password)
    profiles = chat_profiles(base_url, cookies)
    missing = [m for m in _chat_models(ctx) if m not in profiles]
    if missing:
        raise OpsError(
            f"the Chainlit app does not offer the model(s) {', '.join(missing)} (it offers: {', '.join(profiles) or 'none'})",
            hint="check the gateway (`ops host status`) and `ops logs PROFILE chainlit-rag`",
        )
    with ChatClient(
        base_url, cookies, profile=profiles[0] if profiles else None, timeout=min(timeout, 120)
    ) as chat:
        answer = chat.ask(CHAIN_QUESTION)
    problem = answer.metadata.get("error")
    if problem or not answer.tokens:
        raise OpsError(
            f"the Chainlit app streamed no answer: {problem or 'no tokens'}",
            hint="see `ops logs PROFILE chainlit-rag`",
        )
    if answer.metadata.get("indexed_chunks") and not answer.sources:
        raise OpsError(
            "the Chainlit app answered without sources although its index has passages",
            hint="re-index with `ops rag ingest PROFILE`; see `ops logs PROFILE chainlit-rag`",
        )
    cited = ", ".join(dict.fromkeys(answer.source_docs)) or "no documents indexed"
    detail = (
        f"{len(profiles)} model{'' if len(profiles) == 1 else 's'} offered; {answer.model} streamed {len(answer.tokens)} tokens; "
        f"sources: {cited} ({answer.metadata.get('retrieval', '?')})"
    )
    return ChainReport(profiles, answer.text, detail)
