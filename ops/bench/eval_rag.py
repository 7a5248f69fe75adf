"""Where ``ops eval`` asks its ``rag`` questions: the stack's Chainlit RAG app, over its own Socket.IO chat.

The app retrieves passages from its documents, writes the answer with the chosen model and sends
the passages it used, best first; ``ops eval`` checks the answer and that the first source is the
document the question names. The chat client is the one ``ops up``'s chain check uses
(:class:`ops.services.chainlit.ChatClient`); the model is picked as a chat profile, as there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ops.errors import OpsError
from ops.settings import Settings

if TYPE_CHECKING:
    from ops.services.chainlit import ChatClient


@dataclass(frozen=True)
class RagReply:
    """The app's answer to one question: the streamed text, the cited documents (best first)."""

    text: str
    sources: tuple[str, ...]
    model: str
    tokens: int
    error: str = ""


class RagSkip(OpsError):
    """Questions that cannot be asked here (no app, or the app does not offer the model): not a failure."""


class RagSession(Protocol):
    """One chat with the app, for one model."""

    def ask(self, question: str) -> RagReply:
        """Ask ``question``; return the whole answer."""
        ...


class RagChannel(Protocol):
    """Something that answers ``rag`` questions with a given model: the Chainlit app, or a test's fake."""

    @property
    def where(self) -> str:
        """What answers, for the report."""

    def session(self, model: str) -> AbstractContextManager[RagSession]:
        """A chat with ``model``; raises :class:`RagSkip` when the model cannot be chosen."""
        ...


@dataclass
class ChainlitChannel:
    """The stack's Chainlit RAG app at ``url``; signs in on the first chat (the password is in the secrets)."""

    service: str
    url: str
    ctx: object = field(repr=False)
    timeout: float = 120.0
    _cookies: dict[str, str] | None = field(default=None, repr=False)
    _offered: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        """The service and its URL, for the report."""
        return f"{self.service} at {self.url}"

    def _sign_in(self) -> dict[str, str]:
        from ops.services import chainlit

        if self._cookies is None:
            username, password = chainlit.credentials(self.ctx)
            self._cookies = chainlit.sign_in(self.url, username, password)
            self._offered = chainlit.chat_profiles(self.url, self._cookies)
        return self._cookies

    @contextmanager
    def session(self, model: str) -> Iterator[RagSession]:
        """A signed-in chat whose chat profile is ``model``."""
        from ops.services.chainlit import ChatClient

        cookies = self._sign_in()
        if model not in self._offered:
            raise RagSkip(
                f"{self.service} does not offer {model} (it offers {', '.join(self._offered) or 'no model'})"
            )
        with ChatClient(self.url, cookies, profile=model, timeout=self.timeout) as chat:
            yield _ChainlitSession(chat)


@dataclass
class _ChainlitSession:
    chat: ChatClient

    def ask(self, question: str) -> RagReply:
        answer = self.chat.ask(question)
        return RagReply(
            # The streamed tokens are the answer; the message's text also lists the sources after it.
            text="".join(answer.tokens),
            sources=tuple(answer.source_docs),
            model=answer.model,
            tokens=len(answer.tokens),
            error=str(answer.metadata.get("error") or ""),
        )


def open_channel(
    profile: str | None, settings: Settings | None = None, timeout: float = 120.0
) -> tuple[RagChannel | None, str]:
    """The running Chainlit RAG app of ``profile`` (its first running one), or ``None`` and why not."""
    from ops import profiles, reconcile, services
    from ops.plan import resolve
    from ops.stack import GATEWAY_KEY
    from ops.state import StackState

    settings = settings or Settings.from_env()
    loaded = profiles.load(profile or "workshop")
    names = [
        n
        for n, s in loaded.profile.services.items()
        if s.enabled and services.has_feature(s.kind, services.RAG)
    ]
    kinds = " or ".join(services.with_feature(services.RAG))
    if not names:
        return None, f"profile {loaded.name} has no {kinds} service"
    try:
        from ops.docker_engine import connect

        running = reconcile.containers(connect(), loaded.name)
    except OpsError as exc:
        return None, f"cannot see the {kinds} container: {exc.message}"
    up = [n for n in names if getattr(running.get(n), "status", None) == "running"]
    if not up:
        return None, f"the {names[0]} container of {loaded.name} is not running (`ops up {loaded.name}`)"
    plan = resolve(loaded, settings, ask_catalog=False)
    state = StackState.for_stack(loaded.name, settings)
    key = state.secrets.get(GATEWAY_KEY)
    if key is None:
        return None, f"stack {loaded.name} has no key yet (`ops up {loaded.name}`)"
    ctx = plan.wiring(state.secrets, key, tuple(loaded.profile.models))
    return ChainlitChannel(up[0], plan.services[up[0]].url, ctx, timeout), ""
