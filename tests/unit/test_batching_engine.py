"""The batching engine on the bundled tiny models: the real onnxruntime-genai ``og.Engine``, in its own thread.

Greedy answers equal ONNX Runtime GenAI's own generator token for token, alone and eight at a time;
a client that leaves frees its place; a full queue is refused at once; the key-value cache budget
bounds a batch; closing fails what is left.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import onnxruntime_genai as og
import pytest

import ops.models
from ops.batching.engine import BatchEngine, EngineStopped, Overloaded
from ops.batching.job import Job, TokenStream
from ops.batching.limits import Limits
from ops.batching.model import kv_bytes_per_token

BUNDLED = Path(ops.models.__file__).resolve().parent / "bundled"
QUESTIONS = [
    "What is the capital of France?",
    "Why run language models on your own device?",
    "Write a haiku about rain.",
    "hi",
    "Explain quantisation in one paragraph.",
    "What is a CPU?",
    "Name three colours.",
    "Tell me a story about a robot who learns to paint.",
]


@pytest.fixture(scope="module", params=["tiny-fp32", "tiny-int4"])
def loaded(request):
    """(model, tokenizer, folder) of one bundled model, loaded once per module."""
    folder = BUNDLED / request.param
    model = og.Model(str(folder))
    return model, og.Tokenizer(model), folder


@pytest.fixture
def tiny(loaded):
    return loaded


def prompt_ids(tokenizer, question: str) -> tuple[int, ...]:
    text = tokenizer.apply_chat_template(
        json.dumps([{"role": "user", "content": question}]), add_generation_prompt=True
    )
    return tuple(int(t) for t in tokenizer.encode(text))


def reference(model, ids: tuple[int, ...], max_tokens: int) -> list[int]:
    """Greedy token ids from onnxruntime-genai's generator (no engine): the reference."""
    params = og.GeneratorParams(model)
    params.set_search_options(do_sample=False, max_length=len(ids) + max_tokens)
    generator = og.Generator(model, params)
    generator.append_tokens(list(ids))
    out = []
    while not generator.is_done():
        generator.generate_next_token()
        out.append(int(generator.get_next_tokens()[0]))
    return out


def make_engine(model, limits: Limits = Limits(), **kwargs) -> BatchEngine:
    return BatchEngine(model, og, limits, context=4096, name="tiny", **kwargs)


async def collect(stream: TokenStream) -> list[int]:
    out: list[int] = []
    async for ids in stream:
        out.extend(ids)
    return out


def test_a_greedy_answer_equals_the_generators_token_for_token(tiny):
    model, tokenizer, _ = tiny
    engine = make_engine(model)
    try:
        for question in QUESTIONS[:3]:
            ids = prompt_ids(tokenizer, question)

            async def one(ids=ids):
                stream = engine.submit(Job(ids, 24))
                tokens = await collect(stream)
                return tokens, stream.finish

            tokens, finish = asyncio.run(one())
            assert tokens == reference(model, ids, 24)
            assert (finish.reason, finish.prompt_tokens, finish.generated_tokens) == ("length", len(ids), 24)
    finally:
        engine.close()


def test_eight_streams_at_once_all_finish_each_with_its_solo_answer(tiny):
    model, tokenizer, _ = tiny
    engine = make_engine(model)
    prompts = [prompt_ids(tokenizer, q) for q in QUESTIONS]

    async def together():
        streams = [engine.submit(Job(ids, 20 + i)) for i, ids in enumerate(prompts)]
        return await asyncio.gather(*(collect(s) for s in streams))

    try:
        answers = asyncio.run(together())
        for i, (ids, answer) in enumerate(zip(prompts, answers, strict=True)):
            assert answer == reference(model, ids, 20 + i), QUESTIONS[i]
        assert engine.stats.batch_sizes == {4: 2}  # batched: two batches of four
        assert engine.stats.finished == 8
        assert engine.load() == (0, 0)
    finally:
        engine.close()


def test_sampled_answers_in_the_same_batch_leave_a_greedy_one_alone(tiny):
    model, tokenizer, _ = tiny
    engine = make_engine(model)
    ids = prompt_ids(tokenizer, QUESTIONS[1])

    async def mixed():
        greedy = engine.submit(Job(ids, 24))
        sampled = [engine.submit(Job(ids, 24, temperature=1.5, top_p=0.9)) for _ in range(3)]
        return await asyncio.gather(collect(greedy), *(collect(s) for s in sampled))

    try:
        greedy, *sampled = asyncio.run(mixed())
        assert greedy == reference(model, ids, 24)
        assert len({tuple(s) for s in sampled}) > 1  # sampling really happened
        assert engine.stats.batch_sizes == {4: 1}
    finally:
        engine.close()


def test_a_client_that_leaves_frees_its_place_for_the_next(tiny):
    model, tokenizer, _ = tiny
    engine = make_engine(model, Limits(max_batch=1, max_queue=1, lanes=1))
    ids = prompt_ids(tokenizer, QUESTIONS[0])

    async def scenario():
        long = engine.submit(Job(ids, 3000))
        waiting = engine.submit(Job(ids, 8))
        async for _ in long:  # the long answer is generating: the other waits for its place
            break
        assert engine.load() == (1, 1)
        left_at = time.monotonic()
        await long.aclose()
        tokens = await collect(waiting)
        return tokens, time.monotonic() - left_at

    try:
        tokens, after_s = asyncio.run(scenario())
        assert tokens == reference(model, ids, 8)
        # 3,000 tokens take seconds; the waiting request got its place at the next step.
        assert after_s < 1.0
        assert engine.stats.cancelled == 1
        assert engine.load() == (0, 0)
    finally:
        engine.close()


def test_a_cancelled_consumer_task_cancels_its_request(tiny):
    model, tokenizer, _ = tiny
    engine = make_engine(model, Limits(max_batch=1, max_queue=0, lanes=1))
    ids = prompt_ids(tokenizer, QUESTIONS[0])

    async def scenario():
        stream = engine.submit(Job(ids, 3000))
        task = asyncio.ensure_future(collect(stream))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):  # the engine sees the cancel at its next step
            if engine.load() == (0, 0):
                break
            await asyncio.sleep(0.02)
        return await collect(engine.submit(Job(ids, 4)))  # the place is free again

    try:
        assert asyncio.run(scenario()) == reference(model, ids, 4)
        assert engine.stats.cancelled == 1
    finally:
        engine.close()


def test_a_full_queue_is_refused_at_once_and_taken_again_once_it_drains(tiny):
    model, tokenizer, _ = tiny
    engine = make_engine(model, Limits(max_batch=1, max_queue=2, lanes=1))
    ids = prompt_ids(tokenizer, QUESTIONS[0])

    async def scenario():
        streams = [engine.submit(Job(ids, 2000)) for _ in range(3)]  # one generating, two waiting
        with pytest.raises(Overloaded, match="tiny is busy: .* waiting, the most it takes"):
            engine.submit(Job(ids, 4))
        for stream in streams:
            await stream.aclose()
        return await collect(engine.submit(Job(ids, 4)))

    try:
        assert len(asyncio.run(scenario())) == 4
        assert engine.stats.refused == 1
    finally:
        engine.close()


def test_a_request_longer_than_the_context_or_the_cache_budget_is_refused(tiny):
    model, tokenizer, folder = tiny
    per_token = kv_bytes_per_token(json.loads((folder / "genai_config.json").read_text()))
    engine = make_engine(model, Limits(kv_cache_mb=per_token * 100 / 2**20), kv_bytes_per_token=per_token)
    ids = prompt_ids(tokenizer, QUESTIONS[0])

    async def submit(max_tokens):
        return engine.submit(Job(ids, max_tokens))

    try:
        with pytest.raises(ValueError, match="more than the model's context of 4096"):
            asyncio.run(submit(4096))
        with pytest.raises(ValueError, match="key-value cache, more than the engine's budget"):
            asyncio.run(submit(100))
    finally:
        engine.close()


def test_the_cache_budget_bounds_how_many_run_together(tiny):
    model, tokenizer, folder = tiny
    per_token = kv_bytes_per_token(json.loads((folder / "genai_config.json").read_text()))
    ids = prompt_ids(tokenizer, QUESTIONS[0])
    # Room for two requests of this length, not three.
    budget_mb = 2.5 * (len(ids) + 16) * per_token / 2**20
    engine = make_engine(model, Limits(kv_cache_mb=budget_mb), kv_bytes_per_token=per_token)

    async def six():
        streams = [engine.submit(Job(ids, 16)) for _ in range(6)]
        return await asyncio.gather(*(collect(s) for s in streams))

    try:
        answers = asyncio.run(six())
        assert all(a == reference(model, ids, 16) for a in answers)
        assert engine.stats.batch_sizes == {2: 3}
    finally:
        engine.close()


def test_closing_fails_what_is_left_and_refuses_more(tiny):
    model, tokenizer, _ = tiny
    engine = make_engine(model, Limits(max_batch=1, lanes=1))
    ids = prompt_ids(tokenizer, QUESTIONS[0])

    async def scenario():
        running, waiting = engine.submit(Job(ids, 3000)), engine.submit(Job(ids, 10))
        async for _ in running:
            break
        await asyncio.get_running_loop().run_in_executor(None, engine.close)
        await collect(running)
        await collect(waiting)
        with pytest.raises(EngineStopped):
            engine.submit(Job(ids, 4))
        return running.finish, waiting.finish

    running, waiting = asyncio.run(scenario())
    assert running.reason == waiting.reason == "failed"
    assert "closed" in running.error


def test_the_batch_limit_is_at_most_what_the_cpu_scheduler_forms(tiny):
    model, _, _ = tiny
    engine = make_engine(model, Limits(max_batch=16))
    try:
        assert engine.max_batch == 4
        assert engine.capabilities.configured_max_batch_size == 4
    finally:
        engine.close()


def test_with_two_lanes_a_new_batch_starts_while_another_runs(tiny):
    model, tokenizer, _ = tiny
    engine = make_engine(model, Limits(max_batch=2, lanes=2, max_queue=0))
    long_ids, short_ids = prompt_ids(tokenizer, QUESTIONS[0]), prompt_ids(tokenizer, QUESTIONS[1])

    async def scenario():
        longs = [engine.submit(Job(long_ids, 3000)) for _ in range(2)]
        for stream in longs:  # the first lane's batch is generating
            async for _ in stream:
                break
        short = await collect(engine.submit(Job(short_ids, 12)))  # not kept waiting for 3,000 tokens
        longs += [engine.submit(Job(long_ids, 3000)) for _ in range(2)]
        with pytest.raises(Overloaded):  # two lanes of two, no queue: full
            engine.submit(Job(short_ids, 12))
        for stream in longs:
            await stream.aclose()
        return short

    try:
        started = time.monotonic()
        assert asyncio.run(scenario()) == reference(model, short_ids, 12)
        assert time.monotonic() - started < 2.0
        assert engine.stats.batch_sizes[1] == 1  # the short one ran beside the first batch
    finally:
        engine.close()


def test_clients_answered_lately_are_waited_for_so_they_share_a_batch(tiny):
    model, tokenizer, _ = tiny
    engine = make_engine(model, Limits(lanes=8, gather_s=0.5))
    ids = prompt_ids(tokenizer, QUESTIONS[0])

    async def scenario():
        first = engine.submit(Job(ids, 200))
        async for _ in first:  # running: the second starts in a lane of its own
            break
        second = engine.submit(Job(ids, 50))
        await asyncio.gather(collect(first), collect(second))
        # Both clients ask again, 50 ms apart: the first waits for the second instead of going alone.
        again = engine.submit(Job(ids, 8))
        await asyncio.sleep(0.05)
        return await asyncio.gather(collect(again), collect(engine.submit(Job(ids, 8))))

    try:
        answers = asyncio.run(scenario())
        assert answers == [reference(model, ids, 8)] * 2
        assert engine.stats.batch_sizes == {1: 2, 2: 1}
    finally:
        engine.close()
