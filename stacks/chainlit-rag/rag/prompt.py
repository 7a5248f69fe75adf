"""The prompt: the best passages, trimmed to what the question is about, then the question, fitted into the context.

What goes in depends on the model (see :func:`plan`). A small model (context of at most
``SMALL_CONTEXT`` tokens, or the settings say so) gets one passage, cut down to the sentences
around those that share most words with the question, and a one-line instruction: a 135M model
loses the thread in four long passages under a long system prompt, and answers from one short
one. A larger model gets the retrieved passages whole, numbered, and is asked to cite them.
Either way the passages come first in the user message and the question last, where a small
model still "sees" it when it starts writing.

Token counts are estimated at three characters per token, on the safe side of what BPE tokenizers
do with English (about four): the app does not have each model's tokenizer, and a prompt that is a
little short is better than one the model rejects. The answer's tokens are reserved first, then the
passages (best first, while they fit in half of what is left; a passage that does not fit whole is
trimmed further), then the question; a question that still does not fit is cut, and the user is told.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from rag.retrieval import Hit

#: The small model's instruction, short on purpose: measured on SmolLM2-135M, the long one below
#: (answer only from the passages, cite them, say when they do not answer) gets fewer answers right.
SMALL_SYSTEM = "Answer the question from the {passage}."
#: The larger model's instruction (``{cite}``: how to cite, when the passages are numbered).
LARGE_SYSTEM = (
    "Answer the question using only the {passage}{cite}. If the {passage} {do} not contain the "
    "answer, say that the documents do not say."
)
CITE = ", and cite the passages you use by their number in square brackets, like [1]"
CHARS_PER_TOKEN = 3
#: Room for the chat template's own tokens (role markers, separators, a default system prompt).
TEMPLATE_TOKENS = 64
DEFAULT_CONTEXT = 4096
#: Models whose context is at most this many tokens get the small model's prompt (SmolLM2-135M
#: reports 8,192; phi-4-mini and most models of a billion parameters and more report 32k or 128k).
SMALL_CONTEXT = 8192
#: The small model's prompt: this many passages, each cut to about this many words. Measured with
#: SmolLM2-135M (int4 and fp32) on ops/evals/rag.yaml and a new note (``eval_prompt.py``): one
#: passage of 40 words got 38 of 58 answers right, 60 words 36, 25 words 35, two passages of 60
#: words 29, and the old prompt (four whole passages in a long system message) 27.
SMALL_PASSAGES = 1
SMALL_PASSAGE_WORDS = 40
#: The large model's prompt: up to this many passages (never more than were retrieved), whole.
LARGE_PASSAGES = 4
#: A passage trimmed below this many words to fit the context is left out instead.
MIN_PASSAGE_WORDS = 8

#: Words that say nothing about what a question is after (BM25's English stop words and question words).
_STOP_WORDS = (
    "a an and are as at be but by can could did do does for from had has have how i if in into is it "
    "its me my no not of on or our should so such than that the their them then there these they "
    "this those to us was we were what when where which who whom whose why will with would you your "
    "about many much"
)
STOP_WORDS = frozenset(_STOP_WORDS.split())
_WORD = re.compile(r"[^\W_]+")
#: A sentence ends at . ! or ? followed by a space and what starts a sentence (not "e.g. this").
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'`(\[]?[A-Z0-9])")
_LIST_ITEM = re.compile(r"([-*+]|\d+[.)])\s")


def estimate_tokens(text: str) -> int:
    """A safe upper estimate of ``text``'s length in tokens."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class Plan:
    """How the prompt is shaped for one model: how many passages, how long each, which instruction.

    ``passages`` is at most this many: never more than were retrieved (``RAG_TOP_K``).
    """

    passages: int
    #: Words per passage, 0 for the whole passage.
    passage_words: int
    system: str
    #: Whether the passages are numbered for citing (``[1] file (location)``) or given bare.
    numbered: bool


def plan(context_length: int | None, passages: int | None = None, passage_words: int | None = None) -> Plan:
    """The prompt's shape for a model with ``context_length`` tokens; ``passages`` and ``passage_words`` override.

    A model's size is not on its model card, so its context length stands in for it: at most
    ``SMALL_CONTEXT`` tokens (or unknown) is taken for a small model. The settings
    ``RAG_PROMPT_PASSAGES`` and ``RAG_PASSAGE_WORDS`` decide for any model when they are set.
    """
    small = (context_length or DEFAULT_CONTEXT) <= SMALL_CONTEXT
    count = passages if passages is not None else (SMALL_PASSAGES if small else LARGE_PASSAGES)
    words = passage_words if passage_words is not None else (SMALL_PASSAGE_WORDS if small else 0)
    if count < 1 or words < 0:
        raise ValueError(f"need passages >= 1 and passage_words >= 0 (got {count}, {words})")
    # One passage needs no number to be told apart; several are numbered so the answer can cite them.
    numbered = count > 1
    return Plan(count, words, system(small, numbered), numbered)


def system(small: bool, numbered: bool) -> str:
    """The instruction for a small or a larger model, for one passage or several (numbered)."""
    noun = "passages" if numbered else "passage"
    if small:
        return SMALL_SYSTEM.format(passage=noun)
    return LARGE_SYSTEM.format(passage=noun, cite=CITE if numbered else "", do="do" if numbered else "does")


@dataclass
class Prompt:
    """Messages for ``/v1/chat/completions``, the passages they carry, and what the user must be told."""

    messages: list[dict]
    #: The passages in the prompt, in order: passage n is the answer's source n.
    hits: list[Hit]
    question: str
    notices: list[str] = field(default_factory=list)
    truncated: bool = False


# --- trimming ------------------------------------------------------------------------------------


def _stemmer():
    try:
        import Stemmer
    except ImportError:  # PyStemmer is optional (as for bm25s); without it words are matched as written
        return None
    return Stemmer.Stemmer("english")


_STEMMER = _stemmer()


def terms(text: str) -> set[str]:
    """The words of ``text`` that carry meaning, lower-cased and stemmed."""
    words = [w for w in (m.lower() for m in _WORD.findall(text)) if w not in STOP_WORDS]
    return set(_STEMMER.stemWords(words)) if _STEMMER is not None else set(words)


def sentences(text: str) -> list[str]:
    """``text``'s sentences, whitespace joined; Markdown headings left out (the location names the section)."""
    paragraphs: list[list[str]] = [[]]
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or _LIST_ITEM.match(line):
            paragraphs.append([])
            if not line or line.startswith("#"):
                continue
        paragraphs[-1].append(line)
    found = []
    for lines in paragraphs:
        if lines:
            found += [s for s in _SENTENCE_END.split(" ".join(lines)) if s]
    return found


def _window(words: list[str], wanted: set[str], limit: int) -> str:
    """``limit`` words of one over-long sentence, centred on the words the question asks about."""
    hits = [i for i, word in enumerate(words) if terms(word) & wanted]
    centre = hits[len(hits) // 2] if hits else 0
    start = max(0, min(centre - limit // 2, len(words) - limit))
    return " ".join(words[start : start + limit])


def trim(text: str, question: str, limit: int) -> str:
    """The sentences of ``text`` around the one that shares most with ``question``, about ``limit`` words in all.

    Sentences are weighed by the question's words they hold, a word counting for more when fewer
    sentences of the passage hold it; the best one is kept, then its neighbours after and before it
    while the window stays within ``limit`` words. ``limit`` 0 keeps the whole text.
    """
    parts = sentences(text)
    if limit <= 0 or not parts:
        return text if limit <= 0 else _window(text.split(), terms(question), limit)
    wanted = terms(question)
    held = [terms(s) & wanted for s in parts]
    weight = {t: math.log(1 + len(parts) / sum(t in h for h in held)) for t in set().union(*held)}
    scores = [sum(weight[t] for t in h) for h in held]
    best = max(range(len(parts)), key=lambda i: (scores[i], -i))
    if len(parts[best].split()) >= limit:
        return _window(parts[best].split(), wanted, limit)
    low = high = best
    used = len(parts[best].split())
    grown = True
    while grown:
        grown = False
        for i in (high + 1, low - 1):
            if 0 <= i < len(parts) and used + len(parts[i].split()) <= limit:
                used += len(parts[i].split())
                low, high = min(low, i), max(high, i)
                grown = True
    return " ".join(parts[low : high + 1])


# --- building ------------------------------------------------------------------------------------


def passage(number: int, hit: Hit, text: str | None = None, numbered: bool = True) -> str:
    """One passage as the model sees it (``text``: the passage trimmed)."""
    body = hit.chunk.text if text is None else text
    return f"[{number}] {hit.chunk.doc} ({hit.chunk.location})\n{body}" if numbered else body


def _fit(number: int, hit: Hit, question: str, shape: Plan, room: int) -> str | None:
    """The passage trimmed to ``shape`` and, if need be, further to ``room`` tokens; None if it cannot fit."""
    words = shape.passage_words
    while True:
        text = passage(number, hit, trim(hit.chunk.text, question, words), shape.numbered)
        if estimate_tokens(text) + 2 <= room:
            return text
        # Too long for what is left: halve the words (a whole passage starts from its own length).
        words = (words or len(hit.chunk.text.split())) // 2
        if words < MIN_PASSAGE_WORDS:
            return None


def _user(texts: list[str], question: str) -> str:
    if not texts:
        return f"No passage of the documents matched this question.\n\nQuestion: {question}"
    label = "Passages:" if len(texts) > 1 else "Passage:"
    return f"{label}\n" + "\n\n".join(texts) + f"\n\nQuestion: {question}"


def build(
    question: str, hits: list[Hit], context_length: int | None, answer_tokens: int, shape: Plan | None = None
) -> Prompt:
    """Passages first, the question last, in ``context_length`` tokens with ``answer_tokens`` left for the answer.

    ``hits``: the retrieved passages, best first; the first ``shape.passages`` of them go in
    (``shape``: :func:`plan` for ``context_length`` unless given).
    """
    context = context_length or DEFAULT_CONTEXT
    shape = shape or plan(context_length)
    answer_tokens = min(answer_tokens, context // 4)
    frame = estimate_tokens(shape.system + _user([], "")) + TEMPLATE_TOKENS
    budget = context - answer_tokens - frame
    used: list[Hit] = []
    texts: list[str] = []
    spent = 0
    for hit in hits[: shape.passages]:
        text = _fit(len(used) + 1, hit, question, shape, budget // 2 - spent)
        if text is None:
            break
        used.append(hit)
        texts.append(text)
        spent += estimate_tokens(text) + 2
    room = budget - spent
    notices: list[str] = []
    truncated = False
    if estimate_tokens(question) > room:
        keep = max(room, 0) * CHARS_PER_TOKEN
        notices.append(
            f"Your message is about {estimate_tokens(question):,} tokens, more than the model can read "
            f"next to the passages ({context:,} tokens in all): only its first {keep:,} characters were used."
        )
        question = question[:keep]
        truncated = True
    messages = [
        {"role": "system", "content": shape.system},
        {"role": "user", "content": _user(texts, question)},
    ]
    return Prompt(messages, used, question, notices, truncated)
