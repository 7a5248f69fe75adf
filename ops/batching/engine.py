"""The batching engine: one thread owns ``og.Engine`` and runs the requests of every client together.

onnxruntime-genai requires every call on an engine and on its requests to be serialised with
``Engine.run`` (its ``docs/paged_attention_engine.md``), so one thread makes them all: it admits
waiting requests, cancels the ones whose client left, runs one model step for the whole batch,
and hands each request its new tokens on the asyncio loop that submitted it (one
``call_soon_threadsafe`` per step and loop, not one per token). ``og.Engine.run`` releases the GIL,
so the loop keeps serving while the model computes.

On a CPU (a model without ``engine.dynamic_batching`` in its ``genai_config.json``: its builder
makes a paged-attention model only for CUDA and WebGPU in fp16) onnxruntime-genai 0.18 batches
statically: it starts a batch of at most 4 requests (a constant in its scheduler, whatever
``engine.static_batching.max_batch_size`` says) and admits no other until every request of that
batch has finished. So this engine forms each batch itself: the oldest waiting requests, up to
``max_batch`` and within the key-value cache budget, in a free :class:`~ops.batching.lane.Lane`
(an ``og.Engine`` of its own on the same model). With ``lanes`` above 1, a new batch starts while
others run, and the running batches take turns step by step. A client that leaves has its turn
cancelled at the next step, which frees its place; a batch's cache is freed when the batch ends.
Requests beyond ``max_queue`` waiting are refused at once with :class:`Overloaded`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ops.batching.job import Finish, Job, TokenStream
from ops.batching.lane import Lane, Slot, Update
from ops.batching.limits import STATIC_BATCH_LIMIT, Limits

log = logging.getLogger(__name__)


class Overloaded(Exception):
    """Every place in the batch and the waiting queue is taken: try again shortly (HTTP 429)."""


class EngineStopped(Exception):
    """The engine was closed, or failed and can take no more requests (HTTP 503)."""


@dataclass
class EngineStats:
    """Counters for ``/health`` and the benchmarks."""

    submitted: int = 0
    refused: int = 0
    finished: int = 0
    cancelled: int = 0
    failed: int = 0
    batches: int = 0
    steps: int = 0
    step_s: float = 0.0
    batch_sizes: dict[int, int] = field(default_factory=dict)


class BatchEngine:
    """``og.Engine`` on ``model``, run by one thread of its own; :meth:`submit` from any asyncio loop.

    ``og`` is the ``onnxruntime_genai`` module (tests may pass another); ``context`` the model's
    context length (a job longer than that is refused by :meth:`submit`); ``kv_bytes_per_token`` what
    one token costs in the key-value cache (for ``limits.kv_cache_mb``); ``dynamic`` True for a model
    og batches continuously (paged attention), which takes batches larger than 4.
    """

    def __init__(
        self,
        model: Any,
        og: Any,
        limits: Limits = Limits(),
        *,
        context: int,
        kv_bytes_per_token: int = 0,
        dynamic: bool = False,
        name: str = "model",
        clock: Callable[[], float] = time.monotonic,
    ):
        self._og = og
        self._model = model
        self._lanes: list[Lane] = []  # made by, and only ever touched from, the engine's own thread
        self.capabilities: Any = None
        self.limits = limits
        self.context = context
        self.kv_bytes_per_token = kv_bytes_per_token
        #: Requests that really generate together in one lane: the static scheduler forms no larger batch.
        self.max_batch = limits.max_batch if dynamic else min(limits.max_batch, STATIC_BATCH_LIMIT)
        self.name = name
        self.stats = EngineStats()
        self._clock = clock
        self._lock = threading.Condition()
        self._waiting: deque[Slot] = deque()
        self._cancels: list[Slot] = []
        self._slots: dict[int, Slot] = {}  # id(stream) -> slot, from submit until its end is delivered
        self._ends: deque[float] = (
            deque()
        )  # when answers ended on their own, lately (their clients may ask again)
        self._arrivals: deque[float] = deque()  # when requests came, lately
        self._stopped: str | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"batch-engine-{name}", daemon=True)
        self._thread.start()
        self._ready.wait()
        if not self._lanes:
            raise EngineStopped(self._stopped or f"{name}: the engine did not start")

    # --- the asyncio side ----------------------------------------------------------------------

    def submit(self, job: Job) -> TokenStream:
        """Queue ``job``; iterate the returned stream for its tokens (on the calling loop).

        Raises :class:`Overloaded` when the batches and the queue are full, :class:`EngineStopped`
        after :meth:`close` or a failure, and ValueError for a job that can never run.
        """
        self.check(job)
        stream = TokenStream(job, asyncio.get_running_loop(), self.cancel)
        with self._lock:
            if self._stopped is not None:
                raise EngineStopped(self._stopped)
            if len(self._slots) >= self.max_batch * self.limits.lanes + self.limits.max_queue:
                self.stats.refused += 1
                raise Overloaded(
                    f"{self.name} is busy: {len(self._slots) - len(self._waiting)} requests are generating "
                    f"and {len(self._waiting)} waiting, the most it takes; try again shortly"
                )
            slot = Slot(stream)
            self._arrivals.append(self._clock())
            self._waiting.append(slot)
            self._slots[id(stream)] = slot
            self.stats.submitted += 1
            self._lock.notify()
        return stream

    @property
    def max_length(self) -> int:
        """The most tokens (prompt and answer) one job may have: the context, or what the cache budget holds."""
        budget = self._budget_tokens()
        return self.context if budget is None else min(self.context, budget)

    def check(self, job: Job) -> None:
        """ValueError (with the reason) when ``job`` can never run here."""
        if not job.prompt:
            raise ValueError("the prompt has no tokens")
        if job.max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        if job.length > self.context:
            raise ValueError(
                f"the request needs {job.length} tokens ({len(job.prompt)} in the prompt + {job.max_tokens} "
                f"max_tokens), more than the model's context of {self.context}"
            )
        budget = self._budget_tokens()
        if budget is not None and job.length > budget:
            raise ValueError(
                f"the request needs {job.length} tokens of key-value cache, more than the engine's budget "
                f"({self.limits.kv_cache_mb:g} MB holds {budget} tokens); lower max_tokens"
            )

    def cancel(self, stream: TokenStream) -> None:
        """Stop ``stream``'s job (thread-safe): taken off the queue, or its turn cancelled at the next step."""
        with self._lock:
            slot = self._slots.get(id(stream))
            if slot is None or slot.leaving:
                return
            slot.leaving = True
            if slot in self._waiting:
                self._waiting.remove(slot)
                del self._slots[id(stream)]
                self.stats.cancelled += 1
                return
            # It keeps its place (and counts in load()) until og has ended the turn, at the next step.
            self._cancels.append(slot)
            self._lock.notify()

    def load(self) -> tuple[int, int]:
        """(generating, waiting) right now."""
        with self._lock:
            return len(self._slots) - len(self._waiting), len(self._waiting)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread; jobs still running or waiting end as failed."""
        with self._lock:
            if self._stopped is None:
                self._stopped = f"{self.name}: the engine was closed"
            self._lock.notify()
        self._thread.join(timeout)

    # --- the engine thread ---------------------------------------------------------------------

    def _budget_tokens(self) -> int | None:
        if self.limits.kv_cache_mb is None or not self.kv_bytes_per_token:
            return None
        return int(self.limits.kv_cache_mb * 1024 * 1024 // self.kv_bytes_per_token)

    def _run(self) -> None:
        try:  # og 0.18 checks that every call comes from the thread that made the engine
            self._lanes = [Lane(self._og, self._model) for _ in range(self.limits.lanes)]
            self.capabilities = self._lanes[0].engine.get_capabilities()
        except Exception as exc:  # the model cannot be served: the constructor raises
            self._lanes = []
            self._stopped = f"{self.name}: the engine did not start: {exc}"
            return
        finally:
            self._ready.set()
        try:
            while (work := self._next()) is not None:
                cancels, starts = work
                for slot in cancels:
                    if slot.lane is not None:
                        slot.lane.cancel(slot)
                for lane, batch in starts:
                    self._deliver(lane.begin(batch))
                for lane in self._lanes:
                    if lane.busy:
                        updates = lane.step()
                        self.stats.steps += 1
                        self.stats.step_s += lane.step_s
                        self._deliver(updates)
        except Exception as exc:  # a failed step leaves og's state unknown: stop taking requests
            log.exception("%s: the batching engine failed", self.name)
            with self._lock:
                self._stopped = f"{self.name}: the engine failed: {exc}"
        self._fail_all(self._stopped or "closed")

    def _next(self) -> tuple[list[Slot], list[tuple[Lane, list[Slot]]]] | None:
        """Wait for work: (turns to cancel, batches to begin in free lanes); None to stop."""
        with self._lock:
            while True:
                if self._stopped is not None:
                    return None
                cancels, self._cancels = self._cancels, []
                starts: list[tuple[Lane, list[Slot]]] = []
                free = [lane for lane in self._lanes if not lane.busy]
                wait = self._gather_wait() if self._waiting and free else None
                if wait is None or wait <= 0:
                    while self._waiting and free and (batch := self._pick()):
                        starts.append((lane := free.pop(0), batch))
                        lane.cache_tokens = len(batch) * max(s.stream.job.length for s in batch)
                if cancels or starts or any(lane.busy for lane in self._lanes):
                    return cancels, starts
                self._lock.wait(wait)

    def _gather_wait(self) -> float:
        """Seconds to wait for more requests before starting a batch smaller than ``max_batch``.

        Only while answers that ended in the last ``gather_s`` outnumber the requests that came
        since: those clients typically ask again within milliseconds, and a batch started without
        them would keep them waiting for all of it (clients split over several small batches would
        otherwise stay split, each batch ending and starting again on its own).
        """
        now = self._clock()
        while self._ends and self._ends[0] < now - self.limits.gather_s:
            self._ends.popleft()
        while self._arrivals and self._arrivals[0] < now - self.limits.gather_s:
            self._arrivals.popleft()
        if not self._ends or len(self._waiting) >= self.max_batch:
            return 0.0
        back = sum(1 for t in self._arrivals if t >= self._ends[0])
        if back >= len(self._ends):  # every client answered lately has asked again
            return 0.0
        return self._ends[0] + self.limits.gather_s - now

    def _pick(self) -> list[Slot]:
        """The oldest waiting jobs that fit together (lock held): at most ``max_batch``, within the cache budget."""
        budget = self._budget_tokens()
        room = None if budget is None else budget - sum(lane.cache_tokens for lane in self._lanes)
        batch: list[Slot] = []
        longest = 0
        while self._waiting and len(batch) < self.max_batch:
            length = max(longest, self._waiting[0].stream.job.length)
            if room is not None and (len(batch) + 1) * length > room:
                break
            longest = length
            batch.append(self._waiting.popleft())
        if batch:
            self.stats.batches += 1
            self.stats.batch_sizes[len(batch)] = self.stats.batch_sizes.get(len(batch), 0) + 1
        return batch

    def _deliver(self, items: list[Update]) -> None:
        """Hand tokens and ends to each stream's loop: one thread-safe call per loop."""
        if not items:
            return
        by_loop: dict[
            int, tuple[asyncio.AbstractEventLoop, list[tuple[TokenStream, list[int], Finish | None]]]
        ] = {}
        with self._lock:
            for slot, tokens, finish in items:
                if finish is not None:
                    self._slots.pop(id(slot.stream), None)
                    self._count(finish)
                stream = slot.stream
                by_loop.setdefault(id(stream.loop), (stream.loop, []))[1].append((stream, tokens, finish))
        for loop, batch in by_loop.values():
            try:
                loop.call_soon_threadsafe(_feed_all, batch)
            except RuntimeError:  # that loop is closed: nobody reads these streams any more
                for stream, _, finish in batch:
                    if finish is None:
                        self.cancel(stream)

    def _count(self, finish: Finish) -> None:
        if finish.reason == "cancelled":
            self.stats.cancelled += 1
        elif finish.reason == "failed":
            self.stats.failed += 1
        else:
            self.stats.finished += 1
            self._ends.append(self._clock())

    def _fail_all(self, message: str) -> None:
        """Every job still here ends as failed (the engine is stopping)."""
        with self._lock:
            slots = list(self._slots.values())
            self._slots.clear()
            self._waiting.clear()
        for lane in self._lanes:
            lane.close()
        self._deliver(
            [(s, [], Finish("failed", len(s.stream.job.prompt), s.generated, message)) for s in slots]
        )


def _feed_all(batch: list[tuple[TokenStream, list[int], Finish | None]]) -> None:
    for stream, tokens, finish in batch:
        stream.feed(tokens, finish)
