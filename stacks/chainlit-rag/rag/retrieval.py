"""Hybrid search over a snapshot: BM25 (bm25s) and dense vectors, fused by reciprocal rank.

The lexical side finds exact words (names, error messages, options); the dense side finds
paraphrases. Either may be missing (no embedder, an empty index), and the other still answers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import bm25s
import numpy as np

from rag.chunking import Chunk
from rag.embeddings import Embedder
from rag.fusion import reciprocal_rank_fusion
from rag.index import Snapshot

log = logging.getLogger(__name__)

#: Each side proposes this many candidates for the fusion.
CANDIDATES = 30
#: Dense candidates less similar than this are unrelated text (MiniLM puts those near 0.0-0.15):
#: without the floor every question, even "hello", would cite the nearest passages.
MIN_SIMILARITY = 0.2
#: A query longer than this (a pasted log) is cut for searching; the words at its start decide.
MAX_QUERY_CHARS = 2000


@dataclass(frozen=True)
class Hit:
    """A retrieved passage and how each side ranked it (None: not among its candidates)."""

    chunk: Chunk
    score: float
    lexical_rank: int | None
    dense_rank: int | None


def indexed_text(chunk: Chunk) -> str:
    """What BM25 indexes for a passage: the file name and section count as its words ("gateway.md" finds it)."""
    return f"{chunk.doc} {chunk.section}\n{chunk.text}"


def _stemmer():
    try:
        import Stemmer
    except ImportError:  # PyStemmer is optional for bm25s; without it words are matched as written
        return None
    return Stemmer.Stemmer("english")


class Retriever:
    """Search one snapshot of the index."""

    def __init__(self, snapshot: Snapshot, embedder: Embedder | None = None):
        self.chunks = snapshot.chunks
        self.embedder = embedder
        usable = (
            embedder is not None
            and snapshot.vectors is not None
            and snapshot.manifest.get("embedder") == embedder.id
            and len(snapshot.vectors) == len(self.chunks)
        )
        self.vectors = snapshot.vectors if usable else None
        self._stemmer = _stemmer()
        self._bm25 = None
        if self.chunks:
            texts = [indexed_text(c) for c in self.chunks]
            tokens = bm25s.tokenize(texts, stopwords="en", stemmer=self._stemmer, show_progress=False)
            self._bm25 = bm25s.BM25()
            self._bm25.index(tokens, show_progress=False)

    @property
    def dense(self) -> bool:
        """Whether the dense side takes part."""
        return self.vectors is not None

    def lexical(self, query: str, limit: int = CANDIDATES) -> list[int]:
        """Rows of the chunks BM25 scores above zero for ``query``, best first."""
        if self._bm25 is None:
            return []
        tokens = bm25s.tokenize([query], stopwords="en", stemmer=self._stemmer, show_progress=False)
        if not any(len(ids) for ids in tokens.ids):
            return []
        rows, scores = self._bm25.retrieve(tokens, k=min(limit, len(self.chunks)), show_progress=False)
        return [int(r) for r, s in zip(rows[0], scores[0], strict=True) if s > 0]

    def semantic(self, query: str, limit: int = CANDIDATES) -> list[int]:
        """Rows of the chunks nearest to ``query`` by cosine similarity, best first."""
        if self.vectors is None or self.embedder is None:
            return []
        query_vector = self.embedder.embed([query])[0]
        similarity = self.vectors @ query_vector
        order = np.argsort(-similarity, kind="stable")[:limit]
        return [int(r) for r in order if similarity[r] >= MIN_SIMILARITY]

    def search(self, query: str, k: int = 4) -> list[Hit]:
        """The ``k`` best passages for ``query``: both rankings fused by reciprocal rank."""
        query = query.strip()[:MAX_QUERY_CHARS]
        if not query or not self.chunks:
            return []
        lexical = self.lexical(query)
        try:
            dense = self.semantic(query)
        except Exception as exc:  # a gateway embedder that went away: lexical search still answers
            log.warning("dense retrieval failed, using BM25 alone: %s", exc)
            dense = []
        fused = reciprocal_rank_fusion([lexical, dense])
        lexical_rank = {row: rank for rank, row in enumerate(lexical, start=1)}
        dense_rank = {row: rank for rank, row in enumerate(dense, start=1)}
        return [
            Hit(self.chunks[row], score, lexical_rank.get(row), dense_rank.get(row))
            for row, score in fused[:k]
        ]
