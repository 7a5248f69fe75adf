"""The app's settings, all from environment variables (``ops`` sets them; see the recipe's README)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rag.chunking import DEFAULT_OVERLAP, DEFAULT_SIZE


def _int(env: Mapping[str, str], name: str, default: int, minimum: int | None = None) -> int:
    value = env.get(name, "").strip()
    try:
        number = int(value) if value else default
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise SystemExit(f"{name} must be at least {minimum}, got {value!r}")
    return number


def _auto_int(env: Mapping[str, str], name: str, minimum: int) -> int | None:
    """A whole number, or None for ``auto`` (or unset): the app then chooses by the model."""
    value = env.get(name, "").strip()
    if value.lower() in ("", "auto"):
        return None
    try:
        number = int(value)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number or `auto`, got {value!r}") from None
    if number < minimum:
        raise SystemExit(f"{name} must be at least {minimum} (or `auto`), got {value!r}")
    return number


def _temperature(env: Mapping[str, str], name: str, default: float) -> float:
    value = env.get(name, "").strip()
    try:
        number = float(value) if value else default
    except ValueError:
        raise SystemExit(f"{name} must be a number from 0 to 2, got {value!r}") from None
    if not 0 <= number <= 2:  # also refuses nan
        raise SystemExit(f"{name} must be a number from 0 to 2, got {value!r}")
    return number


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise SystemExit(f"{name} must be true or false, got {value!r}")


def _path(env: Mapping[str, str], name: str, default: str | None) -> Path | None:
    value = env.get(name, default or "")
    return Path(value) if value else None


@dataclass(frozen=True)
class Settings:
    """Where the documents and index are, how to reach the gateway, and how to cut and search."""

    docs: Path
    index: Path
    samples: Path | None
    embedder_dir: Path | None
    base_url: str
    key: str
    #: Preferred chat models, in order (the gateway's list decides what is really there).
    models: tuple[str, ...]
    embeddings_model: str
    #: False (the default): only models that stay on this machine answer and embed, and every request
    #: is marked private (``x-ops-private``), so the gateway never sends the documents away.
    allow_remote: bool
    chunk_size: int
    chunk_overlap: int
    #: Passages retrieved and listed as sources.
    top_k: int
    #: Of those, how many go into the prompt, and how many words of each (None: chosen by the
    #: model's context length, see ``rag.prompt.plan``; 0 words: whole passages).
    prompt_passages: int | None
    passage_words: int | None
    max_tokens: int
    #: Sent with every request: 0 is greedy (the same question gets the same answer).
    temperature: float
    username: str
    password: str
    auth: str  # "password" or "header"
    auth_header: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``env`` (default: the process environment)."""
        env = os.environ if env is None else env
        models = tuple(m.strip() for m in env.get("RAG_MODELS", "").split(",") if m.strip())
        return cls(
            docs=_path(env, "RAG_DOCS_DIR", "/data/docs"),
            index=_path(env, "RAG_INDEX_DIR", "/data/index"),
            samples=_path(env, "RAG_SAMPLE_DIR", None),
            embedder_dir=_path(env, "RAG_EMBEDDER_DIR", None),
            base_url=env.get("OPENAI_BASE_URL", "http://host.docker.internal:8000/v1"),
            key=env.get("OPENAI_API_KEY", ""),
            models=models,
            embeddings_model=env.get("RAG_EMBEDDINGS_MODEL", "").strip(),
            allow_remote=_flag(env, "RAG_ALLOW_REMOTE_MODELS"),
            chunk_size=_int(env, "RAG_CHUNK_SIZE", DEFAULT_SIZE),
            chunk_overlap=_int(env, "RAG_CHUNK_OVERLAP", DEFAULT_OVERLAP),
            top_k=_int(env, "RAG_TOP_K", 4, minimum=1),
            prompt_passages=_auto_int(env, "RAG_PROMPT_PASSAGES", minimum=1),
            passage_words=_auto_int(env, "RAG_PASSAGE_WORDS", minimum=0),
            max_tokens=_int(env, "RAG_MAX_TOKENS", 300, minimum=1),
            temperature=_temperature(env, "RAG_TEMPERATURE", 0.0),
            username=env.get("RAG_USERNAME", "workshop"),
            password=env.get("RAG_PASSWORD", ""),
            auth=env.get("RAG_AUTH", "password").strip().lower(),
            auth_header=env.get("RAG_AUTH_HEADER", "X-Forwarded-User"),
        )
