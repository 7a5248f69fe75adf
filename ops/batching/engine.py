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
batch has finished. So this engine forms each batch itself, when the previous one is done: the
oldest waiting requests, up to ``max_batch`` and within the key-value cache budget. A client that
leaves has its turn cancelled at the next step, which frees its place; the batch's cache is freed
when the batch ends. Requests beyond ``max_queue`` waiting are refused at once with
:class:`Overloaded`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ops.batching.job import Finish, Job, TokenStream
from ops.batching.limits import STATIC_BATCH_LIMIT, Limits

log = logging.getLogger(__name__)


class Overloaded(Exception):
    """Every place in the batch and the waiting queue is taken: try again shortly (HTTP 429)."""


class EngineStopped(Exception):
    """The engine was closed, or failed and can take no more requests (HTTP 503)."""


@dataclass(eq=False)
class _Slot:
    """A job in the engine thread's hands: its stream, and the og request once admitted."""

    stream: TokenStream
    request: Any = None
    turn: int = 0
    generated: int = 0
    leaving: bool = False  # its client left (set under the lock)
    cancelled: bool = False  # its turn was cancelled (engine thread)
    done: bool = False


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
    one token costs in the key-value cache (for ``limits.kv_cache_mb``).
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
        self._engine: Any = None  # made by, and only ever touched from, the engine's own thread
        self._buffer: Any = None
        self.capabilities: Any = None
        self.limits = limits
        self.context = context
        self.kv_bytes_per_token = kv_bytes_per_token
        #: Requests that really generate together: the static scheduler never forms a larger batch.
        self.max_batch = limits.max_batch if dynamic else min(limits.max_batch, STATIC_BATCH_LIMIT)
        self.name = name
        self.stats = EngineStats()
        self._clock = clock
        self._lock = threading.Condition()
        self._waiting: deque[_Slot] = deque()
        self._cancels: list[_Slot] = []
        self._slots: dict[int, _Slot] = {}  # id(stream) -> slot, waiting or active (for cancel)
        self._active: dict[int, _Slot] = {}  # id(og request) -> slot, engine thread only
        self._ended_at = 0.0  # when the last batch ended
        self._ended_size = 0  # how many of its jobs finished on their own (their clients may come back)
        self._done_in_batch = 0
        self._stopped: str | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"batch-engine-{name}", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._engine is None:
            raise EngineStopped(self._stopped or f"{name}: the engine did not start")

    # --- the asyncio side ----------------------------------------------------------------------

    def submit(self, job: Job) -> TokenStream:
        """Queue ``job``; iterate the returned stream for its tokens (on the calling loop).

        Raises :class:`Overloaded` when ``max_queue`` jobs already wait, :class:`EngineStopped`
        after :meth:`close` or a failure, and ValueError for a job that can never run.
        """
        self.check(job)
        stream = TokenStream(job, asyncio.get_running_loop(), self.cancel)
        with self._lock:
            if self._stopped is not None:
                raise EngineStopped(self._stopped)
            if len(self._slots) >= self.max_batch + self.limits.max_queue:
                self.stats.refused += 1
                raise Overloaded(
                    f"{self.name} is busy: {len(self._slots) - len(self._waiting)} requests are generating "
                    f"and {len(self._waiting)} waiting, the most it takes; try again shortly"
                )
            slot = _Slot(stream)
            self._waiting.append(slot)
            self._slots[id(stream)] = slot
            self.stats.submitted += 1
            self._lock.notify()
        return stream

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
        # og 0.18 checks that every call comes from the thread that made the engine.
        try:
            self._engine = self._og.Engine(self._model)
            self._buffer = self._engine.create_event_buffer(256)
            self.capabilities = self._engine.get_capabilities()
        except Exception as exc:  # the model cannot be served: the constructor raises
            self._engine = None
            self._stopped = f"{self.name}: the engine did not start: {exc}"
            return
        finally:
            self._ready.set()
        try:
            while True:
                batch, cancels = self._next()
                if batch is None:
                    break
                for slot in cancels:
                    self._cancel_turn(slot)
                if batch:
                    self._begin(batch)
                if self._active:
                    self._step()
        except Exception as exc:  # a failed step leaves og's state unknown: stop taking requests
            log.exception("%s: the batching engine failed", self.name)
            with self._lock:
                self._stopped = f"{self.name}: the engine failed: {exc}"
        self._fail_all(self._stopped or "closed")

    def _next(self) -> tuple[list[_Slot] | None, list[_Slot]]:
        """Wait for work; return (a new batch to begin or [], turns to cancel); (None, []) to stop."""
        with self._lock:
            while True:
                if self._stopped is not None:
                    return None, []
                cancels, self._cancels = self._cancels, []
                if self._active:
                    return [], cancels
                if self._waiting:
                    wait = self._gather_wait()
                    if wait <= 0:
                        return self._pick(), cancels
                    self._lock.wait(wait)
                    continue
                if cancels:
                    return [], cancels
                self._lock.wait()

    def _gather_wait(self) -> float:
        """Seconds to wait for more requests before starting a batch with fewer than it could hold.

        Only right after a batch ended: its clients typically send their next request within a
        few milliseconds, and a batch started without them would keep them waiting for all of it.
        """
        expected = min(self._ended_size, self.max_batch)
        if len(self._waiting) >= expected:
            return 0.0
        return self._ended_at + self.limits.gather_s - self._clock()

    def _pick(self) -> list[_Slot]:
        """The oldest waiting jobs that fit together (lock held): at most ``max_batch``, within the cache budget."""
        budget = self._budget_tokens()
        batch: list[_Slot] = []
        longest = 0
        while self._waiting and len(batch) < self.max_batch:
            length = max(longest, self._waiting[0].stream.job.length)
            if budget is not None and batch and (len(batch) + 1) * length > budget:
                break
            longest = length
            batch.append(self._waiting.popleft())
        return batch

    def _begin(self, batch: list[_Slot]) -> None:
        og = self._og
        self.stats.batches += 1
        self._done_in_batch = 0
        self.stats.batch_sizes[len(batch)] = self.stats.batch_sizes.get(len(batch), 0) + 1
        for slot in batch:
            job = slot.stream.job
            try:
                options = og.RequestOptions()
                options.set_max_session_tokens(job.length)
                request = self._engine.create_request(options=options)
                turn = og.TurnOptions(request)
                turn.set_max_generated_tokens(job.max_tokens)
                if job.temperature > 0:
                    turn.set_do_sample(True)
                    turn.set_temperature(job.temperature)
                    turn.set_top_p(job.top_p)
                    if job.top_k is not None:
                        turn.set_top_k(job.top_k)
                else:
                    turn.set_do_sample(False)
                slot.turn = request.begin_turn(np.asarray(job.prompt, dtype=np.int32), turn)
            except RuntimeError as exc:  # og's checks on a request: this job fails, the others run
                self._deliver([(slot, [], Finish("failed", len(job.prompt), 0, str(exc)))])
                continue
            slot.request = request
            self._active[id(request)] = slot

    def _cancel_turn(self, slot: _Slot) -> None:
        if slot.request is not None and not slot.cancelled and not slot.done:
            slot.cancelled = True
            slot.request.cancel_turn(slot.turn)

    def _step(self) -> None:
        flags = self._og.EngineEventFlags
        started = time.perf_counter()
        events = self._engine.run(self._buffer)
        self.stats.steps += 1
        self.stats.step_s += time.perf_counter() - started
        out: dict[int, tuple[_Slot, list[int], Finish | None]] = {}
        for event in events:
            slot = self._active.get(id(event.request))
            if slot is None:
                continue
            _, tokens, _ = out.setdefault(id(slot), (slot, [], None))
            if event.flags & flags.TOKEN:
                tokens.append(int(event.token))
                slot.generated += 1
            if event.flags & (flags.TURN_FINISHED | flags.FAILED):
                out[id(slot)] = (slot, tokens, self._finished(slot, event))
        self._deliver(list(out.values()))
        if not self._active:
            with self._lock:
                self._ended_at = self._clock()
                self._ended_size = self._done_in_batch

    def _finished(self, slot: _Slot, event: Any) -> Finish:
        """Close a finished request and say how it ended."""
        og = self._og
        del self._active[id(slot.request)]
        slot.done = True
        slot.request.close()
        usage = event.usage
        prompt = int(usage.prompt_tokens) if usage is not None else len(slot.stream.job.prompt)
        generated = int(usage.generated_tokens) if usage is not None else slot.generated
        if event.flags & og.EngineEventFlags.FAILED:
            self.stats.failed += 1
            return Finish(
                "failed", prompt, generated, f"the engine failed the request ({event.error_code.name})"
            )
        reason = event.finish_reason
        if reason == og.FinishReason.CANCELLED:
            self.stats.cancelled += 1
            return Finish("cancelled", prompt, generated)
        self.stats.finished += 1
        self._done_in_batch += 1  # a client whose answer ended on its own may come back at once
        if reason == og.FinishReason.EOS:
            return Finish("eos", prompt, generated)
        if reason in (og.FinishReason.MAX_GENERATED_TOKENS, og.FinishReason.MAX_SESSION_TOKENS):
            return Finish("length", prompt, generated)
        if reason == og.FinishReason.FAILED:
            return Finish("failed", prompt, generated, "the engine failed the request")
        return Finish("eos", prompt, generated)

    def _deliver(self, items: list[tuple[_Slot, list[int], Finish | None]]) -> None:
        """Hand tokens and finishes to each stream's loop: one thread-safe call per loop."""
        if not items:
            return
        by_loop: dict[
            int, tuple[asyncio.AbstractEventLoop, list[tuple[TokenStream, list[int], Finish | None]]]
        ] = {}
        with self._lock:
            for slot, tokens, finish in items:
                if finish is not None:
                    self._slots.pop(id(slot.stream), None)
                stream = slot.stream
                by_loop.setdefault(id(stream.loop), (stream.loop, []))[1].append((stream, tokens, finish))
        for loop, batch in by_loop.values():
            try:
                loop.call_soon_threadsafe(_feed_all, batch)
            except RuntimeError:  # that loop is closed: nobody reads these streams any more
                for stream, _, finish in batch:
                    if finish is None:
                        self.cancel(stream)

    def _fail_all(self, message: str) -> None:
        """Every job still here ends as failed (the engine is stopping)."""
        with self._lock:
            slots = list(self._slots.values())
            self._slots.clear()
            self._waiting.clear()
        for slot in self._active.values():  # cancelled ones included: they are no longer in _slots
            with contextlib.suppress(RuntimeError):
                slot.request.close()
        self._active.clear()
        self._deliver(
            [(s, [], Finish("failed", len(s.stream.job.prompt), s.generated, message)) for s in slots]
        )


def _feed_all(batch: list[tuple[TokenStream, list[int], Finish | None]]) -> None:
    for stream, tokens, finish in batch:
        stream.feed(tokens, finish)
