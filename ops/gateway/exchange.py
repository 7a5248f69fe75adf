"""One request as the meter sees it: who, which model, when it started, its tokens, its first token.

The gateway makes an :class:`Exchange` for every chat or embeddings request that got past the key
check, and calls :meth:`Exchange.finish` exactly once when the answer has been sent (or refused,
or the client left): that records one :class:`~ops.metering.Usage`, adds its tokens to the
caller's quota window and gives back the model's slot.

Tokens come from the answer's ``usage``. A stream has one only when asked for, so the gateway asks
every upstream for it (``stream_options.include_usage``; the batching engine, Foundry Local's web
service and OpenAI's API all send it) and drops that last chunk unless the client asked for it
too. :meth:`Exchange.relay` passes a stream through as it arrives, looking only for chunks with
content (the first token's time, the gaps between tokens) and the usage chunk, with a byte search
per event: JSON is parsed for the usage chunk only.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from ops.gateway.callers import Caller
from ops.gateway.routing import request_strings, request_text
from ops.gateway.sharing import Slot
from ops.metering import Meter, Usage

log = logging.getLogger("ops.gateway")

#: The end of one server-sent event.
_EVENT_END = re.compile(rb"\r?\n\r?\n")
#: A chunk that carries content: text (not the empty opening delta), reasoning, or a tool call.
_CONTENT = re.compile(rb'"(?:content|reasoning_content)"\s*:\s*"[^"]|"tool_calls"\s*:\s*\[')
#: A ``usage`` that is an object (OpenAI's API sends ``"usage": null`` on every other chunk).
_USAGE = re.compile(rb'"usage"\s*:\s*\{')


def ask_usage(body: dict[str, Any]) -> bool:
    """Ask the upstream for a stream's usage; True when the client asked for it itself (then it keeps it)."""
    options = body.get("stream_options")
    options = options if isinstance(options, dict) else {}
    wanted = bool(options.get("include_usage"))
    body["stream_options"] = {**options, "include_usage": True}
    return wanted


def _split(events: bytes) -> list[bytes]:
    """Complete events, one each (the last item is empty)."""
    return _EVENT_END.split(events) if b"\r" in events else events.split(b"\n\n")


def _has_content(event: bytes) -> bool:
    """True when ``event`` carries content. The compact form every local server writes is found with
    one byte search (about 0.2 us); other spacings, reasoning and tool calls take the regular expression."""
    at = event.find(b'"content":"')
    if at >= 0:
        return event[at + 11 : at + 12] != b'"'
    if b'content"' in event or b'"tool_calls"' in event:
        return _CONTENT.search(event) is not None
    return False


def _last_event_end(data: bytes) -> int:
    """The index just past the last complete event in ``data`` (-1 when there is none)."""
    if data.endswith(b"\n\n"):
        return len(data)
    lf, crlf = data.rfind(b"\n\n"), data.rfind(b"\n\r\n")
    return max(lf + 2 if lf >= 0 else -1, crlf + 3 if crlf >= 0 else -1)


@dataclass(eq=False)
class Exchange:
    """What one request used and how it went; recorded once by :meth:`finish`."""

    meter: Meter
    caller: Caller
    task: str = "chat"
    #: Called with (caller id, arrival, tokens) when the request ends: the quota windows.
    spent: Callable[[str, float, int], None] = lambda caller, at, tokens: None
    at: float = field(default_factory=time.time)
    started: float = field(default_factory=time.perf_counter)
    model: str = ""
    #: The alias whose inter-token gaps these are (the concrete model of a routed request).
    served_by: str = ""
    slot: Slot | None = None
    body: dict[str, Any] | None = None
    #: The client asked for the stream's usage chunk itself: pass it on.
    keep_usage: bool = True
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft: float | None = None
    chunks: int = 0
    completed: bool = False
    finished: bool = False
    _last: float = 0.0

    def hold(self, slot: Slot, served_by: str) -> None:
        """The model's slot this request runs in, released by :meth:`finish`."""
        self.slot, self.served_by = slot, served_by

    def answered(self, data: object) -> None:
        """A whole (not streamed) answer: its usage, and its time as the first token's."""
        usage = data.get("usage") if isinstance(data, dict) else None
        self._take_usage(usage)
        if self.ttft is None:
            self.ttft = time.perf_counter() - self.started

    def ended(self) -> None:
        """A stream ended: 200 when it was sent whole, 499 when its client left first."""
        self.finish(200 if self.completed else 499)

    def _take_usage(self, usage: object) -> None:
        if isinstance(usage, dict):
            prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
            if isinstance(prompt, int):
                self.prompt_tokens = prompt
            if isinstance(completion, int):
                self.completion_tokens = completion
            elif isinstance(prompt, int):  # embeddings: prompt (and total) tokens only
                self.completion_tokens = 0

    async def relay(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """Pass ``chunks`` (a server-sent event stream) through, measuring it; the usage chunk dropped unless kept."""
        pending = b""
        async for chunk in chunks:
            if pending:
                chunk, pending = pending + chunk, b""
            end = _last_event_end(chunk)
            if end < 0:  # no event is complete yet: a client cannot use half of one either
                pending = chunk
                continue
            if end < len(chunk):
                chunk, pending = chunk[:end], chunk[end:]
            out = self._look(chunk)
            if out:
                yield out
        if pending:
            yield self._look(pending)
        self.completed = True

    def _look(self, events: bytes) -> bytes:
        """Measure complete ``events``; the bytes to send on (without a dropped usage chunk)."""
        dropped = False
        for event in _split(events):
            if not event:
                continue
            if _has_content(event):
                now = time.perf_counter()
                if self.ttft is None:
                    self.ttft = now - self.started
                else:
                    self.meter.inter_token(self.served_by, now - self._last)
                self._last = now
                self.chunks += 1
            if b'"usage"' in event and _USAGE.search(event):
                dropped |= self._usage_event(event)
        if not dropped:
            return events
        kept = [e for e in _split(events) if e and not (_USAGE.search(e) and self._bare(e))]
        return b"".join(e + b"\n\n" for e in kept)

    def _usage_event(self, event: bytes) -> bool:
        """Take the usage of ``event``; True when the client should not see it (it asked for none)."""
        data = self._parse(event)
        if data is None:
            return False
        self._take_usage(data.get("usage"))
        return not self.keep_usage and not data.get("choices")

    def _bare(self, event: bytes) -> bool:
        data = self._parse(event)
        return data is not None and not data.get("choices")

    @staticmethod
    def _parse(event: bytes) -> dict[str, Any] | None:
        start = event.find(b"{")
        try:
            data = json.loads(event[start:]) if start >= 0 else None
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def finish(self, status: int) -> Usage | None:
        """Record the request (once), count its tokens against the caller's hour, free its slot."""
        if self.finished:
            return None
        self.finished = True
        if self.slot is not None:
            self.slot.release()
        prompt, completion = self.prompt_tokens, self.completion_tokens
        if completion is None:
            # No usage from the upstream (one that ignores stream_options, or an answer cut short):
            # count each streamed chunk with content as a token (servers send one a token) and
            # estimate the prompt at about four characters a token, as routing does.
            completion = self.chunks
            if prompt is None and (self.chunks or status == 200) and self.body is not None:
                prompt = self._estimate_prompt()
        usage = Usage(
            at=self.at,
            caller=self.caller.id,
            participant=self.caller.participant,
            model=self.model,
            status=status,
            prompt_tokens=prompt or 0,
            completion_tokens=completion or 0,
            ttft=self.ttft,
            duration=time.perf_counter() - self.started,
            queued=self.slot.queued if self.slot is not None else 0.0,
            task=self.task,
        )
        try:
            self.meter.record(usage)
        except Exception as exc:  # the answer went out; a meter's failure must not turn it into an error
            log.warning("usage not recorded: %s: %s", type(exc).__name__, exc)
        self.spent(usage.caller, usage.at, usage.prompt_tokens + usage.completion_tokens)
        return usage

    def _estimate_prompt(self) -> int:
        assert self.body is not None
        if self.task == "chat":
            text = request_text(self.body)
        else:
            text = "\n".join(request_strings(self.body.get("input")))
        return len(text) // 4 + 1
