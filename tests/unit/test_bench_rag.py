"""The RAG benchmark's parts on a tiny corpus: generation, ingest and re-sync, both engines, the report."""

from __future__ import annotations

import json

import pytest

from ops.bench import rag, rag_corpus, rag_retrieval
from ops.cli import main

pytestmark = pytest.mark.unit

DOCS = 50
QUERIES = 20
SEED = 11
#: A made-up word the generator cannot produce (it has no "x" or "q"), in one short document only.
NEEDLE = "quixotrexel"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return rag_corpus.generate_corpus(tmp_path_factory.mktemp("docs"), DOCS, SEED)


@pytest.fixture(scope="module")
def ingested(corpus, tmp_path_factory):
    index = tmp_path_factory.mktemp("index")
    return rag.measure_ingest(corpus, index), index


def test_the_corpus_is_deterministic_and_the_same_prefix_for_every_size(corpus, tmp_path):
    smaller = rag_corpus.generate_corpus(tmp_path / "small", 20, SEED)
    assert [d.path for d in smaller.documents] == [d.path for d in corpus.documents[:20]]
    for doc in smaller.documents:
        assert (smaller.root / doc.path).read_bytes() == (corpus.root / doc.path).read_bytes()
    other = rag_corpus.generate_corpus(tmp_path / "other", 20, SEED + 1)
    assert (other.root / other.documents[0].path).read_bytes() != (
        corpus.root / corpus.documents[0].path
    ).read_bytes()
    assert {d.path.rsplit(".", 1)[1] for d in corpus.documents} == {"md", "txt"}
    text = (corpus.root / corpus.documents[0].path).read_text()
    assert all(word in text.lower() for word in corpus.documents[0].topic)


def test_ingest_counts_chunks_and_a_resync_with_nothing_changed_does_nothing(corpus, ingested):
    figures, index = ingested
    assert figures.documents == DOCS
    assert figures.chunks >= figures.documents > 0
    assert figures.docs_per_s > 0 and figures.peak_rss_mb > 0 and figures.index_mb > 0
    assert (figures.unchanged_added, figures.unchanged_changed) == (0, 0)
    assert not figures.unchanged_rewrote_index
    assert figures.rewritten == 1 and figures.changed_reported == 1  # 1% of 50, at least one file
    # The rewritten file was restored, and so was the index: both are what the first sync saw and made.
    for number, doc in enumerate(corpus.documents):
        assert (corpus.root / doc.path).read_text() == rag_corpus.document_text(number, SEED)[1]
    rag_retrieval.import_rag()
    from rag.index import Store, file_digest

    snapshot = Store(index).load()
    assert len(snapshot.chunks) == figures.chunks
    files = snapshot.manifest["files"]
    assert all(files[d.path]["sha256"] == file_digest(corpus.root / d.path) for d in corpus.documents)


def test_both_engines_time_the_same_queries(corpus, ingested):
    _, index = ingested
    queries = rag_corpus.make_queries(corpus, QUERIES + 5)
    assert queries == rag_corpus.make_queries(corpus, QUERIES + 5)  # deterministic
    figures = rag_retrieval.measure_retrieval(index, queries[5:], queries[:5])
    assert figures.queries == QUERIES and figures.chunks > 0 and figures.documents == DOCS
    for engine in (figures.ours, figures.baseline):
        assert 0 < engine.p50_ms <= engine.p95_ms <= engine.p99_ms
        assert engine.source_in_top5 > 0.5  # questions are built from their document's own words
    assert figures.speedup_p50 == pytest.approx(figures.baseline.p50_ms / figures.ours.p50_ms)
    assert 0 < figures.top1_agreement <= 1


def test_a_rare_word_brings_up_the_same_chunk_in_both_engines(corpus, tmp_path):
    (corpus.root / "zz-needle.md").write_text(
        f"# Storage\n\nThe {NEEDLE} keeps the spare keys in a drawer.\n"
    )
    try:
        index = tmp_path / "index"
        rag_retrieval.import_rag()
        from rag.index import Store

        report = Store(index).sync(corpus.root, None)
        assert "zz-needle.md" in report.added and len(report.added) == DOCS + 1
        engines = rag_retrieval.Engines(index)
        question = f"where is the {NEEDLE} of the {rag_corpus.vocabulary(SEED).words[60]}?"
        ours, theirs = engines.ours(question), engines.theirs(question)
        assert ours and theirs
        assert ours[0] == theirs[0]
        assert engines.chunks[ours[0]].doc == "zz-needle.md"
    finally:
        (corpus.root / "zz-needle.md").unlink()


def test_the_command_prints_json_and_says_the_dense_embedder_was_not_measured(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RAG_EMBEDDER_DIR", str(tmp_path / "no-model-here"))
    monkeypatch.setattr(rag, "DEFAULT_EMBEDDER_DIRS", ())
    assert main(["bench-rag", "--sizes", "30", "--queries", "10", "--seed", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    (ingest,) = result["ingest"]
    assert ingest["documents"] == 30 and ingest["embedder"] is None
    assert ingest["sync_rss_mb"] >= 0 and "freshly spawned" in result["memory"]
    assert "no-model-here" in result["dense"]
    assert result["retrieval"]["chunks"] == ingest["chunks"]
    text = rag.render(rag.run([30], queries=10, seed=3, isolate=False))
    assert "dense embedder: NOT MEASURED" in text and "speed-up" in text


def test_bad_sizes_are_refused(capsys):
    assert main(["bench-rag", "--sizes", "ten"]) == 2
    assert "--sizes: expected numbers separated by commas, got 'ten'" in capsys.readouterr().err
    assert main(["bench-rag", "--sizes", "0"]) == 2
