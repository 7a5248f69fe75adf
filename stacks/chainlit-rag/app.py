"""The workshop's RAG chat: Chainlit in front of the stack's gateway and a local document index.

Each question is answered on its own: the best passages from the documents folder (BM25 and
dense retrieval, fused) are retrieved, the first of them (as many as suit the model, trimmed to
what the question is about) are put in front of it, the chosen model's answer is streamed token
by token, and every retrieved passage is listed as a source (file, location, excerpt), best first,
and attached in full.
The retrieval code lives in the ``rag`` package, which does not import Chainlit.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading

import chainlit as cl
from chainlit.input_widget import Select
from rag.auth import ProxyAuth, allowed_origins, origin_allowed
from rag.gateway import CALLER, GatewayError, ModelCard, local_only
from rag.library import Library
from rag.prompt import build, plan
from rag.settings import Settings

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
log = logging.getLogger("rag.app")
# One line per gateway request and per BM25 rebuild would drown what the log is for.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("bm25s").setLevel(logging.WARNING)

SETTINGS = Settings.from_env()
LIBRARY = Library(SETTINGS)
#: How long startup waits for the first sync before serving anyway (a large first ingest goes on
#: in the background, and answers say the index is incomplete until it is done).
START_WAIT_S = 60
#: How long the first sync waits for the gateway before choosing the local embedder instead.
GATEWAY_WAIT_S = 30
EXCERPT_CHARS = 240
_indexed = threading.Event()


def _initial_sync() -> None:
    try:
        LIBRARY.sync(wait_for_gateway=GATEWAY_WAIT_S)
    except Exception:  # the app must come up even when the first ingest fails; the log says why
        log.exception("the first ingest failed; searching whatever index is stored")
    finally:
        _indexed.set()


@cl.on_app_startup
async def startup() -> None:
    """Seed and index the documents folder (new, changed and deleted files only)."""
    threading.Thread(target=_initial_sync, name="initial-ingest", daemon=True).start()
    await asyncio.to_thread(_indexed.wait, START_WAIT_S)


def _only_our_origins() -> None:
    """Browser pages of other origins may not use the app: Socket.IO checks each connection's
    Origin (its own origin, or RAG_ALLOWED_ORIGINS); CORS allows only those listed (config.toml has none)."""
    from chainlit.config import config
    from chainlit.server import sio

    try:
        extra = allowed_origins()
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    sio.eio.cors_allowed_origins = lambda origin, environ: origin_allowed(
        origin, environ.get("HTTP_HOST"), extra
    )
    # The CORS middleware holds this very list and reads it when the first request builds it.
    config.project.allow_origins[:] = list(extra)


_only_our_origins()

if SETTINGS.auth == "header":
    try:
        PROXY = ProxyAuth.from_env()
    except ValueError as exc:
        raise SystemExit(str(exc)) from None

    @cl.header_auth_callback
    async def header_user(headers) -> cl.User | None:
        """A user the proxy in front signed in: its ``RAG_AUTH_HEADER``, with the proxy's shared secret."""
        name = PROXY.user(headers)
        return cl.User(identifier=name, metadata={"provider": "header"}) if name else None

else:
    if not SETTINGS.password:
        raise SystemExit("RAG_PASSWORD is empty: set it (ops does), or RAG_AUTH=header behind a proxy")

    @cl.password_auth_callback
    async def password_user(username: str, password: str) -> cl.User | None:
        """The workshop account (its password from the stack's secrets store), else a participant the
        gateway signs in with these (``ops participants``)."""
        good_name = hmac.compare_digest(username.encode(), SETTINGS.username.encode())
        good_password = hmac.compare_digest(password.encode(), SETTINGS.password.encode())
        if good_name and good_password:
            return cl.User(identifier=username, metadata={"provider": "password"})
        name = await LIBRARY.gateway.sign_in(username, password)
        return cl.User(identifier=name, metadata={"provider": PARTICIPANT}) if name else None


PARTICIPANT = "participant"


def _name_the_caller() -> None:
    """Name a participant's session to the gateway (``X-Ops-User``) on the requests made for this message."""
    user = cl.user_session.get("user")
    metadata = getattr(user, "metadata", None) or {}
    CALLER.set(user.identifier if user is not None and metadata.get("provider") == PARTICIPANT else "")


async def chat_models() -> list[ModelCard]:
    """The gateway's chat models that stay on this machine (any, with RAG_ALLOW_REMOTE_MODELS), the
    preferred ones (``RAG_MODELS``) first."""
    cards = local_only(
        [c for c in await LIBRARY.gateway.models() if c.task != "embeddings"], SETTINGS.allow_remote
    )
    order = {name: i for i, name in enumerate(SETTINGS.models)}
    return sorted(cards, key=lambda c: order.get(c.id, len(order)))


@cl.set_chat_profiles
async def profiles(user: cl.User | None = None) -> list[cl.ChatProfile]:
    """One chat profile per model, asked of the gateway each time (a removed model disappears)."""
    try:
        names = [c.id for c in await chat_models()]
    except GatewayError:
        names = list(SETTINGS.models)
    return [
        cl.ChatProfile(
            name=name,
            markdown_description=f"Answers written by **{name}** from the workshop's documents.",
            default=i == 0,
        )
        for i, name in enumerate(names)
    ]


@cl.on_chat_start
async def start() -> None:
    """Start with the chosen profile's model, and offer the others in the settings."""
    model = cl.user_session.get("chat_profile") or ""
    try:
        names = [c.id for c in await chat_models()]
    except GatewayError:
        names = list(SETTINGS.models)
    model = model if model in names else (names[0] if names else model)
    cl.user_session.set("model", model)
    if names:
        await cl.ChatSettings([Select(id="model", label="Model", values=names, initial_value=model)]).send()


@cl.on_settings_update
async def settings_changed(settings: dict) -> None:
    """Switch the model for the next questions."""
    if settings.get("model"):
        cl.user_session.set("model", str(settings["model"]))


def _sources(hits, read: int) -> tuple[str, list[dict], list[cl.Text]]:
    """The retrieved passages as sources, best first; the first ``read`` of them were in the prompt."""
    lines, records, elements = [], [], []
    for number, hit in enumerate(hits, start=1):
        chunk = hit.chunk
        # Heading lines are left out: the location already names the section.
        body = [line for line in chunk.text.splitlines() if not line.lstrip().startswith("#")]
        excerpt = " ".join(" ".join(body).split()) or " ".join(chunk.text.split())
        excerpt = excerpt if len(excerpt) <= EXCERPT_CHARS else excerpt[: EXCERPT_CHARS - 1] + "…"
        name = f"Source {number}"
        lines.append(f"- **{name}**: `{chunk.doc}`, {chunk.location}: {excerpt}")
        records.append(
            {
                "n": number,
                "doc": chunk.doc,
                "location": chunk.location,
                "excerpt": excerpt,
                "score": round(hit.score, 5),
                "in_prompt": number <= read,
            }
        )
        elements.append(
            cl.Text(name=name, content=f"{chunk.doc} ({chunk.location})\n\n{chunk.text}", display="side")
        )
    text = (
        "\n\n**Sources**\n" + "\n".join(lines)
        if lines
        else "\n\n_No passage in the documents matched this question._"
    )
    return text, records, elements


@cl.on_message
async def answer(message: cl.Message) -> None:
    """Retrieve, prompt, stream the answer, cite the sources."""
    _name_the_caller()
    question = (message.content or "").strip()
    if not question:
        await cl.Message(content="Please type a question about the documents.").send()
        return
    try:
        cards = {c.id: c for c in await chat_models()}
    except GatewayError as exc:
        await cl.Message(content=str(exc), metadata={"error": str(exc)}).send()
        return
    model = cl.user_session.get("model") or cl.user_session.get("chat_profile") or ""
    notices = []
    if model not in cards:
        if not cards:
            where = "" if SETTINGS.allow_remote else " that stays on this machine"
            await cl.Message(
                content=f"The gateway lists no chat model{where} right now: `ops up` brings them back."
                + ("" if SETTINGS.allow_remote else " (RAG_ALLOW_REMOTE_MODELS=true allows remote ones.)")
            ).send()
            return
        replacement = next(iter(cards))
        if model:
            notices.append(
                f"The model `{model}` is not served any more; this answer comes from `{replacement}`."
            )
        model = replacement
        cl.user_session.set("model", model)
    retriever = await asyncio.to_thread(LIBRARY.retriever)
    hits = await asyncio.to_thread(retriever.search, question, SETTINGS.top_k)
    context = cards[model].context_length
    shape = plan(context, SETTINGS.prompt_passages, SETTINGS.passage_words)
    prompt = build(question, hits, context, SETTINGS.max_tokens, shape)
    notices += prompt.notices
    if not _indexed.is_set():
        notices.append("The documents are still being indexed: this answer may miss some of them.")
    for notice in notices:
        await cl.Message(content=f"ℹ️ {notice}", metadata={"notice": True}).send()

    reply = cl.Message(content="")
    streamed, error = 0, ""
    try:
        async for piece in LIBRARY.gateway.stream(
            model, prompt.messages, SETTINGS.max_tokens, SETTINGS.temperature
        ):
            await reply.stream_token(piece)
            streamed += 1
    except GatewayError as exc:
        error = str(exc)
        await reply.stream_token(("\n\n" if streamed else "") + f"⚠️ {error}")
    # Every retrieved passage is listed, not only those the model read: the prompt's passages are
    # the first of them (their numbers are the sources'), the rest let the reader look further.
    text, records, elements = _sources(hits, len(prompt.hits))
    reply.content += text
    reply.elements = elements
    reply.metadata = {
        "model": model,
        "sources": records,
        "streamed_tokens": streamed,
        "indexed_chunks": len(retriever.chunks),
        "retrieval": "hybrid" if retriever.dense else "bm25",
        "truncated": prompt.truncated,
        "prompt_passages": len(prompt.hits),
        "temperature": SETTINGS.temperature,
        "error": error,
    }
    await reply.send()
