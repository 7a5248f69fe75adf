"""A job for the batching engine, how it ended, and the stream of its tokens on an asyncio loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Job:
    """One generation: the prompt's token ids and how to choose the next token.

    ``temperature`` 0 is greedy; otherwise tokens are sampled with ``temperature``, ``top_p`` and
    ``top_k`` (None: the model's ``genai_config.json`` default).
    """

    prompt: tuple[int, ...]
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int | None = None

    @property
    def length(self) -> int:
        """Tokens this job may occupy in the cache: prompt plus answer."""
        return len(self.prompt) + self.max_tokens


@dataclass(frozen=True)
class Finish:
    """How a job ended: ``eos``, ``length``, ``cancelled`` or ``failed`` (with ``error``)."""

    reason: str
    prompt_tokens: int
    generated_tokens: int
    error: str = ""


class TokenStream:
    """The tokens of one job as they come: ``async for ids in stream`` yields lists of token ids.

    After the iteration ends, :attr:`finish` says why. Leaving early (``aclose``, or the task being
    cancelled) cancels the job in the engine, which frees its place in the batch.
    """

    def __init__(self, job: Job, loop: asyncio.AbstractEventLoop, cancel: Callable[[TokenStream], None]):
        self.job = job
        self.finish: Finish | None = None
        self.loop = loop
        self._cancel = cancel
        self._loop = loop
        self._tokens: list[int] = []
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    def feed(self, tokens: list[int], finish: Finish | None) -> None:
        """New tokens and, at the end, the finish: called on :attr:`loop`'s thread (by the engine)."""
        self._tokens.extend(tokens)
        if finish is not None:
            self.finish = finish
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def __aiter__(self) -> TokenStream:
        return self

    async def __anext__(self) -> list[int]:
        try:
            while not self._tokens:
                if self.finish is not None:
                    self._closed = True
                    raise StopAsyncIteration
                self._waiter = self._loop.create_future()
                await self._waiter
        except asyncio.CancelledError:
            await self.aclose()
            raise
        tokens, self._tokens = self._tokens, []
        return tokens

    async def aclose(self) -> None:
        """Stop the job if it is still running (idempotent)."""
        if not self._closed:
            self._closed = True
            if self.finish is None:
                self._cancel(self)
