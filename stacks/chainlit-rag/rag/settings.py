"""The app's settings, all from environment variables (``ops`` sets them; see the recipe's README)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rag.chunking import DEFAULT_OVERLAP, DEFAULT_SIZE


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    try:
        return int(value) if value else default
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, got {value!r}") from None


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
    chunk_size: int
    chunk_overlap: int
    top_k: int
    max_tokens: int
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
            chunk_size=_int(env, "RAG_CHUNK_SIZE", DEFAULT_SIZE),
            chunk_overlap=_int(env, "RAG_CHUNK_OVERLAP", DEFAULT_OVERLAP),
            top_k=_int(env, "RAG_TOP_K", 4),
            max_tokens=_int(env, "RAG_MAX_TOKENS", 300),
            username=env.get("RAG_USERNAME", "workshop"),
            password=env.get("RAG_PASSWORD", ""),
            auth=env.get("RAG_AUTH", "password").strip().lower(),
            auth_header=env.get("RAG_AUTH_HEADER", "X-Forwarded-User"),
        )
