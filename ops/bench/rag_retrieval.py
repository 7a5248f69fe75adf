"""The RAG benchmark's retrieval half: the app's ``Retriever`` (bm25s) against ``rank_bm25.BM25Okapi``.

Both engines rank the same chunk texts with the same tokens; a query's time covers tokenising it and
ranking, and the engines alternate query by query so neither gets a quieter machine.
"""

from __future__ import annotations

import functools
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ops import paths
from ops.bench.rag_corpus import Query
from ops.bench.stats import percentile
from ops.errors import OpsError
from ops.services.chainlit import RECIPE

TOP_K = 5


def rag_dir() -> Path:
    """The app's recipe folder (``stacks/chainlit-rag``), in a checkout or an installed wheel."""
    return paths.shipped("stacks") / RECIPE


def import_rag() -> None:
    """Make the app's ``rag`` package importable (it is the app's code, not an installed package)."""
    folder = str(rag_dir())
    if folder not in sys.path:
        sys.path.insert(0, folder)


@dataclass(frozen=True)
class EngineFigures:
    """One engine's top-5 latencies over the queries, in milliseconds."""

    engine: str
    build_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    #: Share of queries whose source document is among the top 5 (a sanity check of the ranking).
    source_in_top5: float


@dataclass(frozen=True)
class RetrievalFigures:
    """Both engines on the same index and queries."""

    documents: int
    chunks: int
    queries: int
    warmup: int
    load_s: float
    ours: EngineFigures
    baseline: EngineFigures
    speedup_p50: float
    speedup_p95: float
    top1_agreement: float
    overlap_at_5: float


def rank_bm25():
    try:
        from rank_bm25 import BM25Okapi
    except ImportError as exc:
        raise OpsError(
            "rank-bm25 is not installed (the benchmark's baseline)",
            hint="pip install -e '.[dev]' (it pins rank-bm25), or pip install rank-bm25==0.2.2",
        ) from exc
    return BM25Okapi


class Engines:
    """The app's Retriever and rank-bm25 over one stored index, tokenising alike."""

    def __init__(self, index: Path):
        import_rag()
        import bm25s
        from rag.index import Store
        from rag.retrieval import Retriever, indexed_text

        BM25Okapi = rank_bm25()
        started = time.perf_counter()
        snapshot = Store(index).load()
        self.load_s = time.perf_counter() - started
        if snapshot is None or not snapshot.chunks:
            raise OpsError(f"no index with chunks in {index}")
        self.chunks = snapshot.chunks
        started = time.perf_counter()
        self.retriever = Retriever(snapshot)
        self.ours_build_s = time.perf_counter() - started
        # The Retriever's own stemmer and the texts it indexes (file name, section, passage), so both
        # engines see the very same tokens.
        stemmer = self.retriever._stemmer
        self._tokenize = functools.partial(
            bm25s.tokenize, stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False
        )
        started = time.perf_counter()
        self.baseline = BM25Okapi(self._tokenize([indexed_text(c) for c in self.chunks]))
        self.baseline_build_s = time.perf_counter() - started

    def ours(self, query: str) -> list[int]:
        """Top-5 rows by the app's Retriever (lexical: no embedder)."""
        return [self._rows[h.chunk.id] for h in self.retriever.search(query, k=TOP_K)]

    def theirs(self, query: str) -> list[int]:
        """Top-5 rows by rank-bm25: every score, then the 5 best with a positive score, best first."""
        tokens = self._tokenize([query])[0]
        if not tokens:
            return []
        scores = self.baseline.get_scores(tokens)
        k = min(TOP_K, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [int(r) for r in top if scores[r] > 0]

    @functools.cached_property
    def _rows(self) -> dict[str, int]:
        return {c.id: row for row, c in enumerate(self.chunks)}


def measure_retrieval(index: Path, queries: list[Query], warmup: list[Query]) -> RetrievalFigures:
    """Time both engines on ``queries`` (after ``warmup``, not counted), alternating query by query."""
    engines = Engines(index)
    for query in warmup:
        engines.ours(query.text)
        engines.theirs(query.text)
    ours_ms, theirs_ms, ours_found, theirs_found = [], [], [], []
    for query in queries:
        started = time.perf_counter()
        mine = engines.ours(query.text)
        middle = time.perf_counter()
        other = engines.theirs(query.text)
        ended = time.perf_counter()
        ours_ms.append((middle - started) * 1000)
        theirs_ms.append((ended - middle) * 1000)
        ours_found.append(mine)
        theirs_found.append(other)

    def figures(name: str, build_s: float, times: list[float], found: list[list[int]]) -> EngineFigures:
        hits = sum(
            q.source in {engines.chunks[r].doc for r in rows} for q, rows in zip(queries, found, strict=True)
        )
        return EngineFigures(
            engine=name,
            build_s=build_s,
            p50_ms=percentile(times, 50),
            p95_ms=percentile(times, 95),
            p99_ms=percentile(times, 99),
            mean_ms=sum(times) / len(times) if times else 0.0,
            source_in_top5=hits / len(queries) if queries else 0.0,
        )

    ours = figures("Retriever (bm25s)", engines.ours_build_s, ours_ms, ours_found)
    baseline = figures("rank-bm25 BM25Okapi", engines.baseline_build_s, theirs_ms, theirs_found)
    both = [(a, b) for a, b in zip(ours_found, theirs_found, strict=True) if a and b]
    return RetrievalFigures(
        documents=len({c.doc for c in engines.chunks}),
        chunks=len(engines.chunks),
        queries=len(queries),
        warmup=len(warmup),
        load_s=engines.load_s,
        ours=ours,
        baseline=baseline,
        speedup_p50=baseline.p50_ms / ours.p50_ms if ours.p50_ms else 0.0,
        speedup_p95=baseline.p95_ms / ours.p95_ms if ours.p95_ms else 0.0,
        top1_agreement=sum(a[0] == b[0] for a, b in both) / len(both) if both else 0.0,
        overlap_at_5=sum(len(set(a) & set(b)) / TOP_K for a, b in both) / len(both) if both else 0.0,
    )
