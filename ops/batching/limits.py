"""How much a batching engine takes on at once: its batch, its queue, its key-value cache, its patience."""

from __future__ import annotations

from dataclasses import dataclass

#: The largest batch onnxruntime-genai 0.18's static scheduler forms (``StaticBatchScheduler::Schedule``).
STATIC_BATCH_LIMIT = 4
#: Key-value cache for every running batch together. SmolLM2-135M takes 45 KB a token in fp32 (30
#: layers x key and value x 3 heads x 64 x 4 bytes): 1 GB holds 16 requests of 1,400 tokens, or 4
#: lanes of 4 answers of the gateway's default 300 tokens after 1,100-token prompts. Measured: a lane of
#: 4 requests of 2,037 tokens added 394 MB to the process (358 MB of cache by this count).
DEFAULT_KV_CACHE_MB = 1024.0


@dataclass(frozen=True)
class Limits:
    """How much the engine takes on at once.

    ``max_batch``: requests generating together (on a CPU at most :data:`STATIC_BATCH_LIMIT`).
    ``max_queue``: requests waiting for a place; one more is :class:`Overloaded`.
    ``kv_cache_mb``: the key-value cache the running batches may hold together (each: its size x
    its longest request's prompt plus ``max_tokens``); None: no limit beyond lanes x ``max_batch``
    x the model's context.
    ``gather_s``: when a batch has just ended, how long to wait for its clients' next requests
    before starting a smaller batch (clients that send their next request as soon as an answer
    ends would otherwise each start a batch of one). 20 ms missed clients slowed by a busy CPU.
    ``lanes``: batches that run at once, taking turns step by step (each an ``og.Engine``): with
    more than one, a request need not wait for a whole batch to end before its own starts. Measured
    with 8 and 16 closed-loop streams: 1 lane made time to first token 1.7-2x Foundry's; 4 lanes kept
    it at Foundry's at 8 but a client that came back late waited a whole turn at 16 (p95 1.3-1.8x);
    8 lanes leave a free lane for it (p95 0.8-0.9x Foundry's, 1.4x its tokens/s).
    """

    max_batch: int = STATIC_BATCH_LIMIT
    max_queue: int = 64
    kv_cache_mb: float | None = DEFAULT_KV_CACHE_MB
    gather_s: float = 0.06
    lanes: int = 8

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.lanes < 1 or self.max_queue < 0 or self.gather_s < 0:
            raise ValueError("max_batch and lanes must be at least 1, max_queue and gather_s at least 0")
        if self.kv_cache_mb is not None and self.kv_cache_mb <= 0:
            raise ValueError("kv_cache_mb must be positive")
