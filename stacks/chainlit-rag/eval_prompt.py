"""Measure the RAG app's prompt with a real small model, in-process: old prompt against new, per model.

A development tool, not part of the app (the image copies ``app.py`` and ``rag/`` only). It indexes
the sample documents (``docs/``) with the app's own ``rag`` package (BM25 only unless
``--embedder-dir`` names the MiniLM export the image builds), asks each question of
``ops/evals/rag.yaml`` (plus, with ``--note``, three about a note ingested next to the samples, like
the one the small-model measurement of issue 16 used), builds the prompt, applies the model's chat
template and generates greedily with onnxruntime-genai, as Foundry Local does behind the gateway.
An answer is right when it contains an expected answer, by ``ops eval``'s rule
(:func:`ops.bench.eval_score.contains`); retrieval is right when the first source is the question's
document. Run it from the repository with the development venv::

    .venv/bin/python stacks/chainlit-rag/eval_prompt.py /tmp/probe/out/int4 /tmp/probe/out/fp32 \\
        [--variants old,new] [--note] [--show] [--json]

Variants: ``old`` is the prompt before issue 16 (four whole passages in a long system message,
the question alone after it); ``old-sampled`` the same at temperature 1 (what Foundry does when a
request sends no temperature and the gateway fills none in); ``new`` is :func:`rag.prompt.build`
with the app's defaults for the model's context; ``new-extract`` adds an instruction to answer with
the passage's exact words; ``new-2`` gives two trimmed passages; ``new-large`` the large model's
prompt (four whole passages, numbered, cite them). The app's settings are read from the
environment as the app reads them, so ``RAG_PASSAGE_WORDS=40 .venv/bin/python ...`` measures
another trim.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import onnxruntime_genai as og  # noqa: E402
from rag import prompt as rag_prompt  # noqa: E402
from rag.index import Store  # noqa: E402
from rag.retrieval import Hit, Retriever  # noqa: E402
from rag.settings import Settings  # noqa: E402

from ops.bench.eval_questions import load  # noqa: E402
from ops.bench.eval_score import contains  # noqa: E402

NOTE_NAME = "spring-workshop.md"
NOTE = """# Spring workshop logistics

The spring workshop meets in Orchid Hall on the second floor of the east building. Doors open at
8:30 and the first session starts at nine. Bring a laptop with Docker installed and at least
16 GB of memory; the trainer brings spare power strips.

## Network

The guest Wi-Fi network is called ops-guest and its password is kestrel-4417. Ask the trainer for
the stack's keys; they are never written on the whiteboard. The projector is shared over HDMI.
"""
NOTE_QUESTIONS = [
    ("note-room", "Where does the spring workshop meet?", ("Orchid Hall",)),
    ("note-wifi", "What is the guest Wi-Fi password?", ("kestrel-4417",)),
    ("note-doors", "When do the doors open for the spring workshop?", ("8:30",)),
]


@dataclass(frozen=True)
class Item:
    """One question, its acceptable answers and the document that holds them."""

    id: str
    question: str
    expected: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class Row:
    """One model and prompt variant over every question."""

    model: str
    variant: str
    items: int
    retrieval_top1: int
    answer_correct: int
    both_correct: int
    mean_prompt_tokens: float
    seconds: float
    wrong: tuple[str, ...]


# --- the prompt before issue 16, kept here to compare against ------------------------------------

OLD_SYSTEM = (
    "You are the workshop's document assistant. Answer the user's question using only the numbered "
    "passages below, and cite the passages you use by their number in square brackets, like [1]. "
    "If the passages do not contain the answer, say that the documents do not say."
)


def old_messages(question: str, hits: list[Hit], context: int, answer_tokens: int) -> list[dict]:
    """The old prompt: passages (best first, while they fit in half the budget) in the system message."""
    estimate = rag_prompt.estimate_tokens
    answer_tokens = min(answer_tokens, context // 4)
    budget = context - answer_tokens - estimate(OLD_SYSTEM) - rag_prompt.TEMPLATE_TOKENS
    texts, spent = [], 0
    for hit in hits:
        text = rag_prompt.passage(len(texts) + 1, hit)
        if spent + estimate(text) + 2 > budget // 2:
            break
        texts.append(text)
        spent += estimate(text) + 2
    system = f"{OLD_SYSTEM}\n\nPassages:\n\n" + "\n\n".join(texts)
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


EXTRACT = " Answer with the exact words from the passage."


def variant_messages(
    name: str, question: str, hits: list[Hit], context: int, settings: Settings
) -> list[dict]:
    """The messages ``name`` sends."""
    if name.startswith("old"):
        return old_messages(question, hits, context, settings.max_tokens)
    if name == "new":
        shape = rag_prompt.plan(context, settings.prompt_passages, settings.passage_words)
    elif name == "new-extract":
        base = rag_prompt.plan(context, settings.prompt_passages, settings.passage_words)
        shape = rag_prompt.Plan(base.passages, base.passage_words, base.system + EXTRACT, base.numbered)
    elif name == "new-2":
        shape = rag_prompt.plan(context, 2, rag_prompt.SMALL_PASSAGE_WORDS)
    elif name == "new-large":
        shape = rag_prompt.plan(context, rag_prompt.LARGE_PASSAGES, 0)
    else:
        raise SystemExit(f"unknown variant {name!r}: use {', '.join(VARIANTS)}")
    return rag_prompt.build(question, hits, context, settings.max_tokens, shape).messages


VARIANTS = ("old", "old-sampled", "new", "new-extract", "new-2", "new-large")


# --- the model -----------------------------------------------------------------------------------


class Model:
    """One ONNX Runtime GenAI model folder, generating as Foundry Local does."""

    def __init__(self, folder: Path):
        self.name = folder.name
        self.model = og.Model(str(folder))
        self.tokenizer = og.Tokenizer(self.model)
        config = json.loads((folder / "genai_config.json").read_text())
        self.context = config["model"].get("context_length") or config["search"]["max_length"]

    def answer(self, messages: list[dict], max_tokens: int, temperature: float) -> tuple[str, int]:
        """The answer and the prompt's length in tokens (``temperature`` 0: greedy)."""
        text = self.tokenizer.apply_chat_template(json.dumps(messages), add_generation_prompt=True)
        ids = self.tokenizer.encode(text)
        params = og.GeneratorParams(self.model)
        if temperature > 0:
            params.set_search_options(
                do_sample=True, temperature=temperature, random_seed=1, max_length=len(ids) + max_tokens
            )
        else:
            params.set_search_options(do_sample=False, max_length=len(ids) + max_tokens)
        generator = og.Generator(self.model, params)
        generator.append_tokens(ids)
        out = []
        while not generator.is_done():
            generator.generate_next_token()
            out.append(generator.get_next_tokens()[0])
        return self.tokenizer.decode(out), len(ids)


# --- the run -------------------------------------------------------------------------------------


def retriever(note: bool, embedder_dir: Path | None) -> Retriever:
    """The sample documents (and the note) indexed as the app indexes them."""
    folder = Path(tempfile.mkdtemp(prefix="rag-eval-"))
    docs = folder / "docs"
    shutil.copytree(HERE / "docs", docs)
    if note:
        (docs / NOTE_NAME).write_text(NOTE)
    embedder = None
    if embedder_dir is not None:
        from rag.embeddings import LocalEmbedder

        embedder = LocalEmbedder(embedder_dir)
    store = Store(folder / "index")
    store.sync(docs, embedder)
    return Retriever(store.load(), embedder)


def questions(path: Path, note: bool) -> list[Item]:
    """The ``rag`` questions of ``path``, and the note's when asked for."""
    items = [Item(q.id, q.question, q.expected, q.source or "") for q in load([path]) if q.kind == "rag"]
    if note:
        items += [Item(i, q, e, NOTE_NAME) for i, q, e in NOTE_QUESTIONS]
    return items


def run(args: argparse.Namespace) -> list[Row]:
    """Every model with every variant."""
    # The process environment, so RAG_PROMPT_PASSAGES, RAG_PASSAGE_WORDS and RAG_TEMPERATURE can be tried.
    settings = Settings.from_env()
    search = retriever(args.note, args.embedder_dir)
    items = questions(args.questions, args.note)
    hits = {item.id: search.search(item.question, settings.top_k) for item in items}
    top1 = {item.id: bool(hits[item.id]) and hits[item.id][0].chunk.doc == item.source for item in items}
    rows = []
    for folder in args.models:
        model = Model(folder)
        for variant in args.variants:
            temperature = args.sample_temperature if variant == "old-sampled" else settings.temperature
            started, right, both, tokens, wrong = time.perf_counter(), 0, 0, 0, []
            for item in items:
                messages = variant_messages(variant, item.question, hits[item.id], model.context, settings)
                text, length = model.answer(messages, args.max_tokens, temperature)
                good = any(contains(text, e) for e in item.expected)
                right += good
                both += good and top1[item.id]
                tokens += length
                if not good:
                    wrong.append(item.id)
                if args.show:
                    print(
                        f"  {model.name} {variant} {item.id}: {'ok ' if good else 'BAD'} {text[:200]!r}",
                        file=sys.stderr,
                        flush=True,
                    )
            rows.append(
                Row(
                    model.name,
                    variant,
                    len(items),
                    sum(top1.values()),
                    right,
                    both,
                    round(tokens / len(items), 1),
                    round(time.perf_counter() - started, 1),
                    tuple(wrong),
                )
            )
            if not args.json:
                print(line(rows[-1]), flush=True)
    return rows


def line(row: Row) -> str:
    """One row of the table."""
    return (
        f"{row.model:6} {row.variant:12} retrieval top-1 {row.retrieval_top1}/{row.items}  "
        f"answer {row.answer_correct}/{row.items} ({row.answer_correct / row.items:.0%})  "
        f"answer+source {row.both_correct}/{row.items}  prompt {row.mean_prompt_tokens:.0f} tok  {row.seconds:.0f} s"
    )


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help="ONNX Runtime GenAI model folders")
    parser.add_argument("--variants", default="old,new", help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--questions", type=Path, default=ROOT / "ops" / "evals" / "rag.yaml")
    parser.add_argument(
        "--note", action="store_true", help="also ingest a note and ask three questions about it"
    )
    parser.add_argument("--max-tokens", type=int, default=Settings.from_env({}).max_tokens)
    parser.add_argument("--sample-temperature", type=float, default=1.0, help="for old-sampled")
    parser.add_argument("--embedder-dir", type=Path, help="the MiniLM ONNX export, for hybrid retrieval")
    parser.add_argument("--show", action="store_true", help="print every answer (to stderr)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {', '.join(unknown)}: use {', '.join(VARIANTS)}")
    rows = run(args)
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
