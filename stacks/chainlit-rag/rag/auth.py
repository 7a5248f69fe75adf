"""Who may use the app, and from which web pages (no Chainlit import: the app wires these in).

Sign-in by header (``RAG_AUTH=header``): a proxy in front of the app signs users in and names
them in ``RAG_AUTH_HEADER`` (``X-Forwarded-User``). Anything that reaches the app's port can send
that header, so it is trusted only with the proxy's shared secret in ``RAG_PROXY_SECRET_HEADER``
(``X-Proxy-Secret``), equal to ``RAG_PROXY_SECRET`` (required, at least 16 characters), the way
oauth2-proxy and similar proxies prove themselves to what they front.

Origins: the browser pages that may call the app (its REST routes with the sign-in cookie, its
Socket.IO) are its own origin (``scheme://Host`` of the request) and those in
``RAG_ALLOWED_ORIGINS`` (comma-separated, e.g. a proxy's ``https://rag.example.org``); never ``*``.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass

MIN_SECRET = 16


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:  # a plain dict: header names are case-insensitive
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return (value or "").strip()


@dataclass(frozen=True)
class ProxyAuth:
    """Sign-in by a trusted proxy: its user header counts only with its shared secret."""

    user_header: str
    secret_header: str
    secret: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ProxyAuth:
        """Read ``RAG_AUTH_HEADER``, ``RAG_PROXY_SECRET_HEADER`` and ``RAG_PROXY_SECRET``; refuse a missing secret."""
        env = os.environ if env is None else env
        secret = env.get("RAG_PROXY_SECRET", "").strip()
        if len(secret) < MIN_SECRET:
            raise ValueError(
                "RAG_AUTH=header needs RAG_PROXY_SECRET (at least 16 characters), which the proxy sends in "
                "X-Proxy-Secret: without it anything that reaches the port could claim to be any user"
            )
        return cls(
            user_header=env.get("RAG_AUTH_HEADER", "X-Forwarded-User").strip() or "X-Forwarded-User",
            secret_header=env.get("RAG_PROXY_SECRET_HEADER", "X-Proxy-Secret").strip() or "X-Proxy-Secret",
            secret=secret,
        )

    def user(self, headers: Mapping[str, str]) -> str | None:
        """The user the proxy names, or ``None`` when the request did not come through the proxy."""
        given = _header(headers, self.secret_header)
        if not given or not hmac.compare_digest(given.encode(), self.secret.encode()):
            return None
        return _header(headers, self.user_header) or None


def allowed_origins(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """``RAG_ALLOWED_ORIGINS`` as a tuple (``*`` is refused: it would let any page in)."""
    env = os.environ if env is None else env
    origins = tuple(o.strip().rstrip("/") for o in env.get("RAG_ALLOWED_ORIGINS", "").split(",") if o.strip())
    if "*" in origins:
        raise ValueError("RAG_ALLOWED_ORIGINS may not be *: name the origins, e.g. https://rag.example.org")
    return origins


def origin_allowed(origin: str | None, host: str | None, extra: tuple[str, ...] = ()) -> bool:
    """A request from ``origin`` (its Origin header) to ``host`` (its Host header) may proceed.

    No Origin header is not a browser's cross-origin request (ops, curl): allowed. A page of the
    app itself is ``http(s)://`` plus the Host it asked; any other origin must be listed.
    """
    if not origin:
        return True
    if origin in extra:
        return True
    return bool(host) and origin in (f"http://{host}", f"https://{host}")
