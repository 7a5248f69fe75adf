"""``ops compare``: the same prompts to two or more models through one gateway, side by side.

Each prompt goes to every model in turn (the order rotates from prompt to prompt, so no model
always gets the warmer machine), streamed and greedy (``temperature: 0``) after one uncounted
warm-up request per model. For each answer: the text, time to first token, total time, tokens/s
(output tokens over the whole request), the tokens used (the server's usage) and the cost: zero
API cost for a model that stays on this machine, per-token prices from a ``--prices`` file for
the others (unknown without one). :mod:`ops.bench.compare_report` renders the HTML report and saves both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml

from ops.bench import chat
from ops.bench.stats import median
from ops.bench.target import Target
from ops.errors import UsageError


@dataclass(frozen=True)
class Prompt:
    """One prompt of a comparison: a short name, its kind (chat, code...) and its text."""

    name: str
    kind: str
    text: str


BUILTIN_PROMPTS: tuple[Prompt, ...] = (
    Prompt(
        "first-steps",
        "chat",
        "Hi! I have never run a language model on my own laptop. What should I try first?",
    ),
    Prompt(
        "fizzbuzz",
        "code",
        "Write a Python function fizzbuzz(n) that returns the FizzBuzz list from 1 to n, with a docstring.",
    ),
    Prompt(
        "summary",
        "summarisation",
        "Summarise in two sentences: Small language models run on ordinary laptops. They answer "
        "without a network, keep data on the device and cost nothing per request, but they know less "
        "and reason less well than large models served in the cloud, so many teams route easy or "
        "private requests to a local model and send the rest to a cloud model.",
    ),
    Prompt(
        "laptops",
        "reasoning",
        "A workshop has 3 rooms with 14 laptops each, and 5 laptops are broken. How many work? Show your steps.",
    ),
    Prompt(
        "extract",
        "extraction",
        'Return JSON with the keys "speaker", "city" and "date" for: The keynote in Lyon on 12 March 2027 is given by Grace Hopper.',
    ),
)


@dataclass(frozen=True)
class Price:
    """API prices of a model, per 1,000 tokens."""

    input_per_1k: float
    output_per_1k: float


@dataclass(frozen=True)
class Answer:
    """One model's answer to one prompt and what it took."""

    prompt: str
    model: str
    ok: bool
    error: str
    text: str
    ttft_ms: float
    total_ms: float
    prompt_tokens: int | None
    completion_tokens: int
    tokens_per_s: float
    cost: float | None  # None: no price known for a model that may not be free


@dataclass(frozen=True)
class ModelSummary:
    """One model over all prompts: medians of the latencies and rates, sums of tokens and cost."""

    model: str
    locality: str  # "local", "cloud" or "unknown"
    price: Price | None
    answered: int
    failed: int
    ttft_ms: float
    total_ms: float
    tokens_per_s: float
    prompt_tokens: int
    completion_tokens: int
    cost: float | None


@dataclass(frozen=True)
class Comparison:
    """Everything one ``ops compare`` run measured."""

    url: str
    stack: str | None
    max_tokens: int
    prompts: tuple[Prompt, ...]
    answers: tuple[Answer, ...]
    models: tuple[ModelSummary, ...]
    started_at: str

    def answer(self, prompt: str, model: str) -> Answer:
        """The answer of ``model`` to the prompt named ``prompt``."""
        return next(a for a in self.answers if a.prompt == prompt and a.model == model)


def load_prompts(path: Path) -> tuple[Prompt, ...]:
    """Prompts from a YAML (or JSON) list: each a string, or ``{prompt, name?, kind?}``."""
    data = _read_yaml(path)
    if not isinstance(data, list) or not data:
        raise UsageError(
            f"{path}: expected a list of prompts",
            hint='e.g. - "Explain ONNX"  or  - {name: x, prompt: "..."}',
        )
    prompts = []
    for index, item in enumerate(data):
        where = f"{path}[{index}]"
        if isinstance(item, str) and item.strip():
            prompts.append(Prompt(f"prompt-{index + 1}", "custom", item))
        elif isinstance(item, dict) and isinstance(item.get("prompt"), str) and item["prompt"].strip():
            unknown = set(item) - {"prompt", "name", "kind"}
            if unknown:
                raise UsageError(
                    f"{where}: unknown field(s) {', '.join(sorted(unknown))}", hint="use prompt, name, kind"
                )
            prompts.append(
                Prompt(
                    str(item.get("name", f"prompt-{index + 1}")),
                    str(item.get("kind", "custom")),
                    item["prompt"],
                )
            )
        else:
            raise UsageError(
                f"{where}: expected a non-empty string or a mapping with `prompt:`, got {item!r}"
            )
    names = [p.name for p in prompts]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UsageError(f"{path}: prompt names must differ, repeated: {', '.join(duplicates)}")
    return tuple(prompts)


def load_prices(path: Path) -> dict[str, Price]:
    """Prices from YAML: ``MODEL: {input_per_1k: float, output_per_1k: float}`` per model."""
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise UsageError(
            f"{path}: expected a mapping of model names",
            hint="gpt-4o-mini: {input_per_1k: 0.00015, output_per_1k: 0.0006}",
        )
    prices = {}
    for model, entry in data.items():
        if not isinstance(entry, dict) or set(entry) != {"input_per_1k", "output_per_1k"}:
            raise UsageError(
                f"{path}: {model}: expected exactly input_per_1k and output_per_1k, got {entry!r}"
            )
        for field in ("input_per_1k", "output_per_1k"):
            value = entry[field]
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise UsageError(f"{path}: {model}.{field}: expected a number >= 0, got {value!r}")
        prices[str(model)] = Price(float(entry["input_per_1k"]), float(entry["output_per_1k"]))
    return prices


def _read_yaml(path: Path):
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML: {exc}".splitlines()[0]) from None


def cost(
    price: Price | None, locality: str, prompt_tokens: int | None, completion_tokens: int
) -> float | None:
    """API cost of one answer: from ``price`` when known, 0 for a local model, else unknown (None)."""
    if price is not None:
        return (
            prompt_tokens or 0
        ) / 1000 * price.input_per_1k + completion_tokens / 1000 * price.output_per_1k
    return 0.0 if locality == "local" else None


def summarise(model: str, locality: str, price: Price | None, answers: list[Answer]) -> ModelSummary:
    """One model's row of the summary from its answers (failed answers count only as failures)."""
    good = [a for a in answers if a.ok]
    costs = [a.cost for a in good]
    return ModelSummary(
        model=model,
        locality=locality,
        price=price,
        answered=len(good),
        failed=len(answers) - len(good),
        ttft_ms=median([a.ttft_ms for a in good]),
        total_ms=median([a.total_ms for a in good]),
        tokens_per_s=median([a.tokens_per_s for a in good]),
        prompt_tokens=sum(a.prompt_tokens or 0 for a in good),
        completion_tokens=sum(a.completion_tokens for a in good),
        cost=None if None in costs else sum(c for c in costs if c is not None),
    )


def _answer(prompt: Prompt, model: str, sample: chat.Sample, price: Price | None, locality: str) -> Answer:
    tokens = sample.output_tokens
    return Answer(
        prompt=prompt.name,
        model=model,
        ok=sample.ok,
        error=sample.error,
        text=sample.text,
        ttft_ms=sample.ttft_s * 1000,
        total_ms=sample.e2e_s * 1000,
        prompt_tokens=sample.usage_prompt,
        completion_tokens=tokens if sample.ok else 0,
        tokens_per_s=tokens / sample.e2e_s if sample.ok and sample.e2e_s > 0 else 0.0,
        cost=cost(price, locality, sample.usage_prompt, tokens) if sample.ok else None,
    )


def run(
    target: Target,
    models: list[str],
    prompts: tuple[Prompt, ...] = BUILTIN_PROMPTS,
    max_tokens: int = 256,
    prices: dict[str, Price] | None = None,
    timeout: float = 300.0,
    say: Callable[[str], None] = lambda _: None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Comparison:
    """Send every prompt to every model of ``models`` at ``target``; ``transport`` replaces the network."""
    if len(models) < 2 or len(set(models)) != len(models):
        raise UsageError(f"compare needs two or more different models, got {', '.join(models) or 'none'}")
    prices = prices or {}
    where = {m: target.locality.get(m, "unknown") for m in models}
    started_at = datetime.now(UTC).isoformat(timespec="seconds")

    async def measure() -> list[Answer]:
        answers = []
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=10), transport=transport
        ) as client:
            for model in models:
                say(f"warming up {model}")
                await chat.stream_chat(client, target, _body(model, "Hi", 4), warmup=True)
            for index, prompt in enumerate(prompts):
                for model in models[index % len(models) :] + models[: index % len(models)]:
                    say(f"{prompt.name} ({prompt.kind}) -> {model}")
                    sample = await chat.stream_chat(
                        client, target, _body(model, prompt.text, max_tokens), keep_text=True
                    )
                    answers.append(_answer(prompt, model, sample, prices.get(model), where[model]))
        return answers

    answers = chat.run_async(measure())
    return Comparison(
        url=target.url,
        stack=target.stack,
        max_tokens=max_tokens,
        prompts=tuple(prompts),
        answers=tuple(answers),
        models=tuple(
            summarise(m, where[m], prices.get(m), [a for a in answers if a.model == m]) for m in models
        ),
        started_at=started_at,
    )


def _body(model: str, text: str, max_tokens: int) -> dict:
    messages = [{"role": "user", "content": text}]
    return {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0}
