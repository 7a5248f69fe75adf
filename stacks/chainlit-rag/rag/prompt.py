"""The prompt: retrieved passages, numbered, in front of the question, fitted into the model's context.

Token counts are estimated at three characters per token, on the safe side of what BPE tokenizers
do with English (about four): the app does not have each model's tokenizer, and a prompt that is a
little short is better than one the model rejects. The answer's tokens are reserved first, then the
passages (best first, while they fit in half of what is left), then the question; a question that
still does not fit is cut, and the user is told.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rag.retrieval import Hit

SYSTEM = (
    "You are the workshop's document assistant. Answer the user's question using only the numbered "
    "passages below, and cite the passages you use by their number in square brackets, like [1]. "
    "If the passages do not contain the answer, say that the documents do not say."
)
CHARS_PER_TOKEN = 3
#: Room for the chat template's own tokens (role markers, separators).
TEMPLATE_TOKENS = 64
DEFAULT_CONTEXT = 4096


def estimate_tokens(text: str) -> int:
    """A safe upper estimate of ``text``'s length in tokens."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass
class Prompt:
    """Messages for ``/v1/chat/completions``, the passages they carry, and what the user must be told."""

    messages: list[dict]
    hits: list[Hit]
    question: str
    notices: list[str] = field(default_factory=list)
    truncated: bool = False


def passage(number: int, hit: Hit) -> str:
    """One passage as the model sees it."""
    return f"[{number}] {hit.chunk.doc} ({hit.chunk.location})\n{hit.chunk.text}"


def build(question: str, hits: list[Hit], context_length: int | None, answer_tokens: int) -> Prompt:
    """Fit the passages and the question into ``context_length`` tokens, leaving ``answer_tokens``."""
    context = context_length or DEFAULT_CONTEXT
    answer_tokens = min(answer_tokens, context // 4)
    budget = context - answer_tokens - estimate_tokens(SYSTEM) - TEMPLATE_TOKENS
    used: list[Hit] = []
    texts: list[str] = []
    spent = 0
    for hit in hits:
        text = passage(len(used) + 1, hit)
        cost = estimate_tokens(text) + 2
        if spent + cost > budget // 2:
            break
        used.append(hit)
        texts.append(text)
        spent += cost
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
    if texts:
        system = f"{SYSTEM}\n\nPassages:\n\n" + "\n\n".join(texts)
    else:
        system = f"{SYSTEM}\n\nPassages: none were found for this question."
    messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    return Prompt(messages, used, question, notices, truncated)
