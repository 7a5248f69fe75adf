"""The RAG app's retrieval on a fixed corpus: chunking, BM25, dense ranking, fusion, the incremental index (the prompt: test_rag_prompt.py)."""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "stacks" / "chainlit-rag"))

from rag.chunking import chunk_blocks  # noqa: E402
from rag.fusion import reciprocal_rank_fusion  # noqa: E402
from rag.index import Store  # noqa: E402
from rag.loaders import Block  # noqa: E402
from rag.retrieval import Hit, Retriever  # noqa: E402

CORPUS = {
    "lighthouse.md": "# Lighthouse\nThe lighthouse keeper climbs 120 steps every evening to light the lamp.\n"
    "## Fog\nIn fog the horn sounds twice a minute so ships keep off the rocks.\n",
    "bakery.md": "# Bakery\nThe bakery opens at six. Sourdough loaves rise overnight in cool baskets.\n"
    "## Prices\nA sourdough loaf costs four euros; rye bread costs three.\n",
    "garden.txt": "Tomatoes need full sun and deep watering twice a week.\n"
    "Basil grows well beside tomatoes and keeps some insects away.\n",
    "trains.md": "# Night train\nThe night train leaves at 22:40 from platform 7 and reaches the coast at dawn.\n",
}
#: Words of the same meaning share a concept, so the stub embedder finds paraphrases as a real one does.
CONCEPTS = {
    "bread": "bread",
    "loaf": "bread",
    "loaves": "bread",
    "sourdough": "bread",
    "rye": "bread",
    "bakery": "bread",
    "baker": "bread",
    "mist": "fog",
    "fog": "fog",
    "horn": "fog",
    "ship": "sea",
    "ships": "sea",
    "vessel": "sea",
    "boat": "sea",
    "rocks": "sea",
    "coast": "sea",
    "tomatoes": "plant",
    "basil": "plant",
    "vegetable": "plant",
    "herb": "plant",
    "train": "rail",
    "railway": "rail",
    "platform": "rail",
}


class ConceptEmbedder:
    """A deterministic stand-in for MiniLM: a bag of concepts, hashed into 64 dimensions."""

    id = "test:concepts"

    def __init__(self) -> None:
        self.calls = 0
        self.texts = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        self.texts += len(texts)
        rows = np.zeros((len(texts), 64), np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                if word in CONCEPTS:
                    rows[row, int(hashlib.md5(CONCEPTS[word].encode()).hexdigest(), 16) % 64] += 1
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return rows / np.maximum(norms, 1e-12)


@pytest.fixture
def library(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in CORPUS.items():
        (docs / name).write_text(text)
    return docs, Store(tmp_path / "index")


def test_windows_overlap_and_keep_their_lines():
    text = "\n".join(
        " ".join(f"w{line}_{i}" for i in range(5)) for line in range(1, 11)
    )  # 10 lines x 5 words
    chunks = chunk_blocks("doc.txt", [Block(text, "", 1)], size=20, overlap=5)
    assert [(c.start_line, c.end_line) for c in chunks] == [(1, 4), (4, 7), (7, 10)]
    first, second = chunks[0].text.split(), chunks[1].text.split()
    assert first[-5:] == second[:5]  # the overlap
    assert chunks[0].location == "lines 1-4"
    assert len({c.id for c in chunks}) == 3


def test_a_window_never_crosses_a_section_and_names_it():
    blocks = [Block("# A\none two three", "§ A", 1), Block("# B\nfour five", "§ B", 3)]
    chunks = chunk_blocks("x.md", blocks, size=100, overlap=10)
    assert [(c.section, c.location) for c in chunks] == [("§ A", "§ A, lines 1-2"), ("§ B", "§ B, lines 3-4")]
    assert chunk_blocks("p.pdf", [Block("text", "page 2", 1, 2)])[0].location == "page 2"


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (10, 10), (10, -1)])
def test_bad_chunk_settings_are_refused(size, overlap):
    with pytest.raises(ValueError):
        chunk_blocks("x", [Block("a b c")], size=size, overlap=overlap)


def test_fusion_rewards_agreement_and_is_deterministic():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "d"]])
    assert [item for item, _ in fused] == ["b", "a", "d", "c"]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)
    assert [i for i, _ in reciprocal_rank_fusion([["x"], ["y"]])] == ["x", "y"]  # ties: first seen first
    weighted = reciprocal_rank_fusion([["x"], ["y"]], weights=[1.0, 2.0])
    assert weighted[0][0] == "y"


def test_bm25_finds_exact_words(library):
    docs, store = library
    store.sync(docs, None)
    retriever = Retriever(store.load())
    hits = retriever.search("When does the night train leave from platform 7?", k=2)
    assert hits[0].chunk.doc == "trains.md"
    assert hits[0].lexical_rank == 1 and hits[0].dense_rank is None
    assert retriever.search("zebra quantum", k=3) == []


def test_dense_search_finds_a_paraphrase_that_shares_no_word(library):
    docs, store = library
    embedder = ConceptEmbedder()
    store.sync(docs, embedder)
    retriever = Retriever(store.load(), embedder)
    assert retriever.lexical("What does a baker charge?") == []
    hits = retriever.search("What does a baker charge?", k=1)
    assert hits[0].chunk.doc == "bakery.md" and hits[0].dense_rank == 1


def test_hybrid_ranking_on_the_fixed_corpus(library):
    docs, store = library
    embedder = ConceptEmbedder()
    store.sync(docs, embedder)
    retriever = Retriever(store.load(), embedder)
    expected = {
        "How much is a sourdough loaf?": ("bakery.md", "§ Bakery › Prices"),
        "What warns a vessel in the mist?": ("lighthouse.md", "§ Lighthouse › Fog"),
        "Which herb grows beside tomatoes?": ("garden.txt", ""),
        "How many steps does the keeper climb?": ("lighthouse.md", "§ Lighthouse"),
    }
    for question, (doc, section) in expected.items():
        top = retriever.search(question, k=3)[0].chunk
        assert (top.doc, top.section) == (doc, section), question


def test_the_index_is_incremental_by_content_hash(library):
    docs, store = library
    embedder = ConceptEmbedder()
    first = store.sync(docs, embedder)
    assert sorted(first.added) == sorted(CORPUS) and first.chunks == 6
    embedded = embedder.texts

    again = store.sync(docs, embedder)
    assert (again.added, again.changed, again.deleted, again.unchanged) == ([], [], [], 4)
    assert again.generation == first.generation == 1  # nothing to do, nothing rewritten
    assert embedder.texts == embedded  # nothing re-embedded

    (docs / "bakery.md").write_text("# Bakery\nThe bakery now sells croissants only.\n")
    (docs / "trains.md").unlink()
    (docs / "notes").mkdir()
    (docs / "notes" / "new.txt").write_text("The ferry to the island runs hourly.\n")
    (docs / "image.png").write_bytes(b"\x89PNG")
    report = store.sync(docs, embedder)
    assert (
        report.added == ["notes/new.txt"]
        and report.changed == ["bakery.md"]
        and report.deleted == ["trains.md"]
    )
    assert report.unchanged == 2
    assert [(s.path, s.reason) for s in report.skipped] == [("image.png", "unsupported file type .png")]
    assert embedder.texts == embedded + 2  # only the new and the changed file's passages
    snapshot = store.load()
    assert {c.doc for c in snapshot.chunks} == {"bakery.md", "garden.txt", "lighthouse.md", "notes/new.txt"}
    assert snapshot.vectors.shape == (len(snapshot.chunks), 64)
    hits = Retriever(snapshot, embedder).search("ferry island", k=1)
    assert hits[0].chunk.doc == "notes/new.txt"


def test_a_corrupt_pdf_is_skipped_with_its_reason_and_remembered(library):
    docs, store = library
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7 garbage")
    report = store.sync(docs, None)
    assert [s.path for s in report.skipped] == ["broken.pdf"] and "PDF" in report.skipped[0].reason
    assert len(report.added) == 4  # the others were indexed anyway
    again = store.sync(docs, None)
    assert [s.path for s in again.skipped] == ["broken.pdf"] and again.unchanged == 4


def test_a_new_embedder_re_embeds_the_stored_passages_without_re_reading(library):
    docs, store = library
    store.sync(docs, None)
    embedder = ConceptEmbedder()
    report = store.sync(docs, embedder)
    assert report.reembedded == 6 and report.unchanged == 4 and not report.added
    assert store.load().manifest["embedder"] == "test:concepts"


def test_changed_chunk_settings_re_read_everything(library):
    docs, store = library
    store.sync(docs, None, size=180, overlap=40)
    report = store.sync(docs, None, size=50, overlap=10)
    assert sorted(report.changed) == sorted(CORPUS)


def test_hits_carry_both_ranks(library):
    docs, store = library
    embedder = ConceptEmbedder()
    store.sync(docs, embedder)
    hit = Retriever(store.load(), embedder).search("sourdough bakery", k=1)[0]
    assert isinstance(hit, Hit) and hit.lexical_rank == 1 and hit.dense_rank is not None
