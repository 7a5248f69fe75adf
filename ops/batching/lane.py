"""One lane of the batching engine: an ``og.Engine`` and the batch it runs. Used from the engine's thread only.

A lane begins a batch of requests together, runs one model step for all of them at a time, and
reports each request's new tokens and, at its end, how it ended. The engine may keep several lanes
(on one ``og.Model``) taking turns step by step, so that a new batch can start while another runs:
onnxruntime-genai's static batching admits nobody into a batch once it started.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ops.batching.job import Finish, TokenStream


@dataclass(eq=False)
class Slot:
    """A job in the engine's hands: its stream, and once begun, its lane, og request and turn."""

    stream: TokenStream
    lane: Lane | None = None
    request: Any = None
    turn: int = 0
    generated: int = 0
    leaving: bool = False  # its client left (set under the engine's lock)
    cancelled: bool = False  # its turn was cancelled in og
    done: bool = False  # og ended its turn and the request is closed


#: What a lane reports for one job after a step: its new token ids, and how it ended once it did.
Update = tuple[Slot, list[int], Finish | None]


class Lane:
    """An ``og.Engine`` on ``model`` and the batch it is running (``og``: the onnxruntime_genai module)."""

    def __init__(self, og: Any, model: Any):
        self._og = og
        self.engine = og.Engine(model)
        self._buffer = self.engine.create_event_buffer(256)
        self.active: dict[int, Slot] = {}  # id(og request) -> slot
        self.cache_tokens = 0  # key-value cache this batch holds: its size x its longest job
        self.step_s = 0.0

    @property
    def busy(self) -> bool:
        """True while its batch has a request that has not ended."""
        return bool(self.active)

    def begin(self, batch: list[Slot]) -> list[Update]:
        """Begin ``batch`` (this lane must not be busy); returns the jobs og refused, as failed."""
        og = self._og
        failed: list[Update] = []
        self.cache_tokens = len(batch) * max(slot.stream.job.length for slot in batch)
        for slot in batch:
            job = slot.stream.job
            try:
                options = og.RequestOptions()
                options.set_max_session_tokens(job.length)
                request = self.engine.create_request(options=options)
                turn = og.TurnOptions(request)
                turn.set_max_generated_tokens(job.max_tokens)
                turn.set_do_sample(job.temperature > 0)
                if job.temperature > 0:
                    turn.set_temperature(job.temperature)
                    turn.set_top_p(job.top_p)
                    if job.top_k is not None:
                        turn.set_top_k(job.top_k)
                slot.turn = request.begin_turn(np.asarray(job.prompt, dtype=np.int32), turn)
            except RuntimeError as exc:  # og's own checks on a request: this job fails, the others run
                failed.append((slot, [], Finish("failed", len(job.prompt), 0, str(exc))))
                continue
            slot.lane, slot.request = self, request
            self.active[id(request)] = slot
        if not self.active:
            self.cache_tokens = 0
        return failed

    def cancel(self, slot: Slot) -> None:
        """End ``slot``'s turn at the next step (a no-op once it ended)."""
        if slot.request is not None and not slot.cancelled and not slot.done:
            slot.cancelled = True
            slot.request.cancel_turn(slot.turn)

    def step(self) -> list[Update]:
        """One model step for the whole batch: every job's new tokens, and the ends of those that ended."""
        flags = self._og.EngineEventFlags
        started = time.perf_counter()
        events = self.engine.run(self._buffer)
        self.step_s = time.perf_counter() - started
        out: dict[int, Update] = {}
        for event in events:
            slot = self.active.get(id(event.request))
            if slot is None:
                continue
            _, tokens, _ = out.setdefault(id(slot), (slot, [], None))
            if event.flags & flags.TOKEN:
                tokens.append(int(event.token))
                slot.generated += 1
            if event.flags & (flags.TURN_FINISHED | flags.FAILED):
                out[id(slot)] = (slot, tokens, self._end(slot, event))
        if not self.active:
            self.cache_tokens = 0
        return list(out.values())

    def _end(self, slot: Slot, event: Any) -> Finish:
        """Close an ended request and say how it ended."""
        og = self._og
        del self.active[id(slot.request)]
        slot.done = True
        slot.request.close()
        usage = event.usage
        prompt = int(usage.prompt_tokens) if usage is not None else len(slot.stream.job.prompt)
        generated = int(usage.generated_tokens) if usage is not None else slot.generated
        reason = event.finish_reason
        if event.flags & og.EngineEventFlags.FAILED or reason == og.FinishReason.FAILED:
            return Finish(
                "failed", prompt, generated, f"the engine failed the request ({event.error_code.name})"
            )
        if reason == og.FinishReason.CANCELLED:
            return Finish("cancelled", prompt, generated)
        if reason in (og.FinishReason.MAX_GENERATED_TOKENS, og.FinishReason.MAX_SESSION_TOKENS):
            return Finish("length", prompt, generated)
        return Finish("eos", prompt, generated)

    def close(self) -> None:
        """Close every request still in the batch (the engine is stopping)."""
        for slot in self.active.values():
            with contextlib.suppress(RuntimeError):
                slot.request.close()
        self.active.clear()
        self.cache_tokens = 0
