"""One chat completion on the batching engine: its token ids turned into text deltas, stop strings applied.

Text comes from the tokenizer's stream decoder, one token at a time; a token that ends in the
middle of a character yields nothing until the character is whole, and such empty pieces are not
sent (Foundry Local does the same). With ``stop`` strings, text that could be the start of one is
held back until it is known not to be; on a match the answer ends before the stop string, the
engine's turn is cancelled (freeing its place in the batch), ``finish_reason`` is ``stop``, and
``completion_tokens`` counts the tokens up to and including the one that completed the match
(as Foundry Local counts them).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ops.batching.job import TokenStream


class GenerationFailed(Exception):
    """The engine failed this request (or stopped) after it was accepted."""


@dataclass(frozen=True)
class Outcome:
    """How an answer ended, in OpenAI's terms: ``finish_reason`` ``stop`` or ``length``, and usage."""

    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


class Completion:
    """``async for text in completion``: the answer's text as it comes; :attr:`outcome` after the end.

    Leaving the loop early (or the consuming task being cancelled) cancels the request in the engine.
    """

    def __init__(self, stream: TokenStream, tokenizer: Any, stop: tuple[str, ...] = ()):
        self.stream = stream
        self.outcome: Outcome | None = None
        self._tokenizer = tokenizer
        self._stop = stop

    def __aiter__(self) -> AsyncIterator[str]:
        return self._deltas()

    async def text(self) -> str:
        """The whole answer (for a request that is not streamed)."""
        return "".join([piece async for piece in self])

    async def _deltas(self) -> AsyncIterator[str]:
        decoder = self._tokenizer.create_stream()
        held = ""
        count = 0
        try:
            async for ids in self.stream:
                for token in ids:
                    count += 1
                    piece = decoder.decode(token)
                    if not piece:
                        continue
                    if not self._stop:
                        yield piece
                        continue
                    held += piece
                    cut = _first_stop(held, self._stop)
                    if cut >= 0:
                        if held[:cut]:
                            yield held[:cut]
                        prompt = len(self.stream.job.prompt)
                        self.outcome = Outcome("stop", prompt, count)
                        return
                    keep = _partial_stop(held, self._stop)
                    if len(held) > keep:
                        yield held[: len(held) - keep]
                        held = held[len(held) - keep :]
            if held:
                yield held
        finally:
            await self.stream.aclose()
        finish = self.stream.finish
        if finish is None or finish.reason in ("failed", "cancelled"):
            raise GenerationFailed(finish.error if finish and finish.error else "the request was stopped")
        self.outcome = Outcome(
            "stop" if finish.reason == "eos" else "length", finish.prompt_tokens, finish.generated_tokens
        )


def _first_stop(text: str, stops: tuple[str, ...]) -> int:
    """Where the first stop string in ``text`` begins, or -1."""
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else -1


def _partial_stop(text: str, stops: tuple[str, ...]) -> int:
    """Length of the longest end of ``text`` that begins some stop string (0 if none)."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest
