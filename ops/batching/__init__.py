"""Serving local models with onnxruntime-genai's batching engine, behind an OpenAI-compatible app.

- :mod:`ops.batching.engine`: :class:`BatchEngine`, one thread that owns ``og.Engine`` and batches
  the requests of every client; an asyncio-facing ``submit`` that streams token ids.
- :mod:`ops.batching.limits`: :class:`Limits`: batch, lanes, queue, key-value cache budget, gather wait.
- :mod:`ops.batching.lane`: one ``og.Engine`` and the batch it runs (the engine may keep several).
- :mod:`ops.batching.job`: a job (prompt ids, sampling), how it ended, and its :class:`TokenStream`.
- :mod:`ops.batching.chat`: a chat completion request, parsed and checked as the OpenAI API says.
- :mod:`ops.batching.completion`: one completion on a model: template, text deltas, stop strings.
- :mod:`ops.batching.model`: a model folder loaded for the engine (:class:`EngineModel`).
- :mod:`ops.batching.wire`: the JSON bodies and SSE chunks, shaped as Foundry Local's web service sends them.
- :mod:`ops.batching.app`: the ASGI app (``/v1/chat/completions``, ``/v1/models``, ``/health``).
- :mod:`ops.batching.server`: that app on a loopback port in a thread of its own (:class:`EngineServer`).
"""
