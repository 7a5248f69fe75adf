"""A model folder loaded for the batching engine: its tokenizer, chat template, context and engine."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ops.batching.chat import ChatRequest
from ops.batching.completion import Completion
from ops.batching.engine import BatchEngine
from ops.batching.job import Job
from ops.batching.limits import Limits

#: Bytes of one key or value element in the cache: the CPU runs these models in fp32.
KV_ELEMENT_BYTES = 4


def kv_bytes_per_token(genai_config: dict[str, Any], element_bytes: int = KV_ELEMENT_BYTES) -> int:
    """What one token costs in the key-value cache: layers x (key + value) x kv heads x head size x element."""
    decoder = genai_config.get("model", {}).get("decoder", {})
    layers = int(decoder.get("num_hidden_layers") or 0)
    heads = int(decoder.get("num_key_value_heads") or decoder.get("num_attention_heads") or 0)
    head_size = int(decoder.get("head_size") or 0)
    return layers * 2 * heads * head_size * element_bytes


class EngineModel:
    """An ONNX Runtime GenAI folder served through a :class:`BatchEngine`, under ``model_id``.

    Loading takes the model's own ``genai_config.json`` (provider, search defaults); ``og`` is the
    ``onnxruntime_genai`` module. :meth:`complete` is called on an asyncio loop.
    """

    def __init__(self, folder: Path, model_id: str, limits: Limits = Limits(), og: Any = None):
        if og is None:
            import onnxruntime_genai

            og = onnxruntime_genai
        self.folder = folder
        self.model_id = model_id
        self.created = int(time.time())
        config = json.loads((folder / "genai_config.json").read_text(encoding="utf-8"))
        search_max = config.get("search", {}).get("max_length")
        context = config.get("model", {}).get("context_length")
        # og refuses a request longer than search.max_length, whatever the model could take.
        self.context = int(min(v for v in (search_max, context) if v) if (search_max or context) else 2048)
        started = time.perf_counter()
        self.model = og.Model(og.Config(str(folder)))
        self.tokenizer = og.Tokenizer(self.model)
        self.engine = BatchEngine(
            self.model,
            og,
            limits,
            context=self.context,
            kv_bytes_per_token=kv_bytes_per_token(config),
            dynamic="dynamic_batching" in config.get("engine", {}),
            name=model_id,
        )
        self.load_s = time.perf_counter() - started

    def prompt(self, request: ChatRequest) -> tuple[int, ...]:
        """The token ids of ``request``'s messages after the model's chat template, ready for the answer."""
        text = self.tokenizer.apply_chat_template(
            json.dumps(request.template_messages()), add_generation_prompt=True
        )
        return tuple(int(t) for t in self.tokenizer.encode(text))

    def job(self, request: ChatRequest) -> Job:
        """The engine's job for ``request``: without ``max_tokens``, up to the end of the context (or the cache budget)."""
        prompt = self.prompt(request)
        max_tokens = request.max_tokens or max(1, self.engine.max_length - len(prompt))
        return Job(prompt, max_tokens, request.temperature, request.top_p, request.top_k)

    def complete(self, request: ChatRequest) -> Completion:
        """Submit ``request``; iterate the result for its text.

        Raises ValueError for a request that can never run (too long for the context or the cache
        budget), :class:`~ops.batching.engine.Overloaded` when the queue is full.
        """
        return Completion(self.engine.submit(self.job(request)), self.tokenizer, request.stop)

    def close(self) -> None:
        """Stop the engine's thread."""
        self.engine.close()
