"""Generation with onnxruntime-genai in this process: the reference every served path is compared to."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ops.models.support import require_genai


@dataclass(frozen=True)
class Generation:
    """One greedy generation and its timings."""

    text: str
    tokens: int
    prompt_tokens: int
    first_token_s: float
    total_s: float

    @property
    def tokens_per_s(self) -> float:
        """Output tokens per second after the first token (decode speed)."""
        decode = self.total_s - self.first_token_s
        return (self.tokens - 1) / decode if self.tokens > 1 and decode > 0 else 0.0


class InProcessModel:
    """An ONNX Runtime GenAI model folder loaded in this process."""

    def __init__(self, folder: Path | None = None, *, _model=None, _og=None):
        og = _og or require_genai()  # a one-line ModelError where it has no build (Intel macOS)
        self._og = og
        started = time.perf_counter()
        self.model = _model if _model is not None else og.Model(str(folder))
        self.tokenizer = og.Tokenizer(self.model)
        self.load_s = time.perf_counter() - started

    @classmethod
    def from_config(cls, config, og) -> InProcessModel:
        """Load from an ``og.Config`` (to choose the execution provider)."""
        return cls(_model=og.Model(config), _og=og)

    def prompt(self, messages: list[dict[str, str]]) -> str:
        """The model's chat template applied to ``messages``, ready for the assistant's turn."""
        return self.tokenizer.apply_chat_template(json.dumps(messages), add_generation_prompt=True)

    def generate(
        self, messages: list[dict[str, str]], max_tokens: int, on_token: Callable[[str], None] | None = None
    ) -> Generation:
        """Greedy generation of at most ``max_tokens`` new tokens."""
        og = self._og
        started = time.perf_counter()
        input_ids = self.tokenizer.encode(self.prompt(messages))
        params = og.GeneratorParams(self.model)
        params.set_search_options(do_sample=False, max_length=len(input_ids) + max_tokens)
        generator = og.Generator(self.model, params)
        generator.append_tokens(input_ids)
        stream = self.tokenizer.create_stream()
        new: list[int] = []
        first = 0.0
        while not generator.is_done():
            generator.generate_next_token()
            token = int(generator.get_next_tokens()[0])
            if not new:
                first = time.perf_counter() - started
            new.append(token)
            if on_token:
                on_token(stream.decode(token))
        total = time.perf_counter() - started
        return Generation(self.tokenizer.decode(new), len(new), len(input_ids), first, total)
