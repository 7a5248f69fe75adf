"""The RAG benchmark's corpus: documents and questions generated from a fixed seed, offline.

Markdown with headings, lists and code blocks, and plain text; a Zipfian vocabulary of made-up words
under real English function words; lengths spread log-normally around 250 words, as notes and guides
are. Document ``i`` is the same for every corpus size, so 1,000 documents are the start of 10,000.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHANGED_FRACTION = 0.01
VOCABULARY = 30_000
MEDIAN_WORDS = 250
MARKDOWN_SHARE = 0.7
#: The head of every real vocabulary; bm25s (and so both engines here) drops them as stop words.
_FUNCTION_WORDS = """the of and to in a is that for it as with on be by this are or from at an not can you your
will when if which all more one use has have was but also each new these only"""
FUNCTION_WORDS = tuple(_FUNCTION_WORDS.split())
#: Made-up words are built from these; ranks past the function words follow Zipf's law.
ONSETS: tuple[str, ...] = tuple("bcdfghklmnprstvwz")
ONSETS += ("br", "cr", "dr", "fl", "gr", "pl", "pr", "st", "tr", "ch", "sh", "th")
VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "io", "ou")
CODAS = ("", "", "", "n", "r", "s", "l", "m", "t", "nd", "st", "ng")
#: How generated questions start (stop words, as people type them).
QUESTION_STARTS = ("how do I", "what is the", "where does the", "why does the", "when should I", "which", "")
#: Topic words are drawn from these vocabulary ranks: neither stop words nor hapaxes.
TOPIC_RANKS = (300, VOCABULARY)
TOPIC_WORDS = 12
TOPIC_SHARE = 0.15


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
