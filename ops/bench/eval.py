"""``ops eval``: questions with known answers, asked of each model through the stack, and scored.

``fact`` and ``extraction`` questions go to the gateway, one after another, greedy
(``temperature: 0``, ``top_p: 1``) with a small ``max_tokens``, each model with its own chat
template's default system prompt, or, when asked, the same short system prompt for every model
(it shortens small models' answers, but measured on SmolLM2 it costs right answers). ``rag`` questions go
through the stack's Chainlit RAG app (:mod:`ops.bench.eval_rag`), which has its own prompt; such
an answer is right when it contains an expected answer *and* the app's first source is the
question's document. Without the app they are skipped, with the reason. Scoring rules live in
:mod:`ops.bench.eval_score`, the question files in :mod:`ops.bench.eval_questions`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from ops.bench import chat
from ops.bench.eval_questions import KINDS, Question
from ops.bench.eval_rag import RagChannel, RagSkip
from ops.bench.eval_score import cites, is_correct
from ops.bench.target import Target, model_cards
from ops.errors import ModelError, OpsError, UsageError

DEFAULT_MAX_TOKENS = 64
SYSTEM_PROMPT = "Answer in a few words."
#: Item states: asked and answered (right or wrong), the request failed, or not asked (and why).
ANSWERED, ERROR, SKIPPED = "answered", "error", "skipped"


@dataclass(frozen=True)
class ItemResult:
    """One model's answer to one question, and whether it is right."""

    model: str
    id: str
    kind: str
    question: str
    expected: tuple[str, ...]
    status: str  # answered, error or skipped
    answer: str = ""
    correct: bool = False
    seconds: float = 0.0
    tokens: int = 0
    reason: str = ""  # the error, or why the question was skipped
    #: rag only: the answer alone is right; the document cited first; it is the question's document.
    answer_correct: bool | None = None
    cited: str | None = None
    cited_correct: bool | None = None


@dataclass(frozen=True)
class KindScore:
    """One model's score on one kind of question; skipped questions are not counted."""

    kind: str
    score: float | None  # right answers over questions asked; None when none was asked
    correct: int
    items: int
    skipped: int
    errors: int
    #: rag only: answers that contain an expected one, and answers whose first source is the right document.
    answer_correct: int | None = None
    cited_correct: int | None = None


@dataclass(frozen=True)
class ModelScore:
    """One model over every question asked: overall and per kind, and the mean time per answer."""

    model: str
    score: float | None
    correct: int
    items: int
    skipped: int
    errors: int
    mean_seconds: float
    kinds: dict[str, KindScore] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalRun:
    """Everything one ``ops eval`` run asked and found."""

    url: str
    stack: str | None
    max_tokens: int
    system_prompt: str | None
    rag: str  # where rag questions went, or why they were skipped
    files: tuple[str, ...]
    started_at: str
    items: tuple[ItemResult, ...]
    models: tuple[ModelScore, ...]

    @property
    def answered(self) -> int:
        """Questions that got an answer (right or wrong)."""
        return sum(i.status == ANSWERED for i in self.items)


def parse_kinds(text: str | None) -> tuple[str, ...]:
    """``fact,rag`` -> ``("fact", "rag")``; an unknown kind is a :class:`UsageError` listing the valid ones."""
    if text is None:
        return KINDS
    kinds = tuple(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise UsageError(
            f"--kinds: unknown kind {', '.join(map(repr, unknown))}" if unknown else "--kinds: no kind given",
            hint=f"valid kinds: {', '.join(KINDS)}",
        )
    return kinds


def list_models(target: Target, timeout: float = 10.0, transport=None) -> list[dict]:
    """The model cards the gateway lists (``/v1/models``)."""
    return model_cards(target, "see `ops host status`", timeout, transport)


def choose_models(cards: list[dict], wanted: Sequence[str] | None) -> list[str]:
    """``wanted``, each checked against ``cards``; by default every ready chat model (no embeddings, no router)."""
    known = [c["id"] for c in cards]
    if wanted:
        unknown = [m for m in wanted if m not in known]
        if unknown:
            raise UsageError(
                f"unknown model{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}",
                hint=f"the gateway serves: {', '.join(known) or 'no model'}",
            )
        return list(dict.fromkeys(wanted))
    chosen = [
        c["id"]
        for c in cards
        if c.get("task", "chat") != "embeddings"
        and c.get("owned_by") != "ops-router"
        and c.get("ready", True)
    ]
    if not chosen:
        raise ModelError("the gateway lists no ready chat model", hint="see `ops host status`")
    return chosen


def body(model: str, question: str, max_tokens: int, system_prompt: str | None) -> dict:
    """The chat request for one question: greedy, short, the same system prompt for every model."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": question})
    return {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0, "top_p": 1}


def run(
    target: Target,
    models: Sequence[str],
    questions: Sequence[Question],
    max_tokens: int = DEFAULT_MAX_TOKENS,
    system_prompt: str | None = None,
    rag: RagChannel | None = None,
    rag_skipped: str = "no Chainlit RAG app",
    timeout: float = 120.0,
    say: Callable[[str], None] = lambda _: None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> EvalRun:
    """Ask every question of every model in turn; ``transport`` replaces the network in tests."""
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    direct = [q for q in questions if q.kind != "rag"]
    through_app = [q for q in questions if q.kind == "rag"]
    results: list[ItemResult] = []
    if direct:
        results += chat.run_async(
            _ask_gateway(target, models, direct, max_tokens, system_prompt, timeout, say, transport)
        )
    for model in models if through_app else ():
        if rag is None:
            results += [_result(model, q, SKIPPED, reason=rag_skipped) for q in through_app]
        else:
            results += _ask_app(rag, model, through_app, say)
    order = {(m, q.id): i for i, (m, q) in enumerate((m, q) for m in models for q in questions)}
    results.sort(key=lambda r: order[(r.model, r.id)])
    return EvalRun(
        url=target.url,
        stack=target.stack,
        max_tokens=max_tokens,
        system_prompt=system_prompt,
        rag=(f"through {rag.where}" if rag else f"skipped: {rag_skipped}")
        if through_app
        else "no rag questions",
        files=tuple(dict.fromkeys(q.file for q in questions)),
        started_at=started_at,
        items=tuple(results),
        models=tuple(summarise(m, [r for r in results if r.model == m]) for m in models),
    )


async def _ask_gateway(target, models, questions, max_tokens, system_prompt, timeout, say, transport):
    results = []
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=10), transport=transport) as client:
        for model in models:
            say(f"warming up {model}")
            await chat.stream_chat(client, target, body(model, "Hi", 4, system_prompt), warmup=True)
            for q in questions:
                say(f"{q.id} ({q.kind}) -> {model}")
                sample = await chat.stream_chat(
                    client, target, body(model, q.question, max_tokens, system_prompt), keep_text=True
                )
                if not sample.ok:
                    results.append(_result(model, q, ERROR, seconds=sample.e2e_s, reason=sample.error))
                    continue
                results.append(
                    _result(
                        model,
                        q,
                        ANSWERED,
                        answer=sample.text,
                        correct=is_correct(sample.text, q.expected, q.match),
                        seconds=sample.e2e_s,
                        tokens=sample.output_tokens,
                    )
                )
    return results


def _ask_app(rag: RagChannel, model: str, questions: list[Question], say) -> list[ItemResult]:
    results: list[ItemResult] = []
    try:
        with rag.session(model) as session:
            for q in questions:
                say(f"{q.id} (rag) -> {model} through {rag.where}")
                started = time.perf_counter()
                reply = session.ask(q.question)
                seconds = time.perf_counter() - started
                problem = reply.error or (
                    f"the app answered with {reply.model}" if reply.model and reply.model != model else ""
                )
                if problem:
                    results.append(
                        _result(model, q, ERROR, answer=reply.text, seconds=seconds, reason=problem)
                    )
                    continue
                said = is_correct(reply.text, q.expected, q.match)
                cited = cites(reply.sources, q.source or "")
                results.append(
                    _result(
                        model,
                        q,
                        ANSWERED,
                        answer=reply.text,
                        correct=said and cited,
                        seconds=seconds,
                        tokens=reply.tokens,
                        answer_correct=said,
                        cited=reply.sources[0] if reply.sources else None,
                        cited_correct=cited,
                    )
                )
    except RagSkip as exc:
        status, reason = SKIPPED, exc.message
    except OpsError as exc:
        status, reason = ERROR, exc.message
    else:
        return results
    done = {r.id for r in results}
    return results + [_result(model, q, status, reason=reason) for q in questions if q.id not in done]


def _result(model: str, q: Question, status: str, **values) -> ItemResult:
    return ItemResult(
        model=model, id=q.id, kind=q.kind, question=q.question, expected=q.expected, status=status, **values
    )


def summarise(model: str, results: Sequence[ItemResult]) -> ModelScore:
    """A model's scores from its results: errors count as wrong answers, skipped questions not at all."""
    kinds = {}
    for kind in KINDS:
        mine = [r for r in results if r.kind == kind]
        if mine:
            kinds[kind] = _count(kind, mine)
    total = _count("all", results)
    answered = [r.seconds for r in results if r.status == ANSWERED]
    return ModelScore(
        model=model,
        score=total.score,
        correct=total.correct,
        items=total.items,
        skipped=total.skipped,
        errors=total.errors,
        mean_seconds=sum(answered) / len(answered) if answered else 0.0,
        kinds=kinds,
    )


def _count(kind: str, results: Sequence[ItemResult]) -> KindScore:
    correct = sum(r.correct for r in results)
    items = sum(r.status != SKIPPED for r in results)
    return KindScore(
        kind=kind,
        score=correct / items if items else None,
        correct=correct,
        items=items,
        skipped=sum(r.status == SKIPPED for r in results),
        errors=sum(r.status == ERROR for r in results),
        answer_correct=sum(bool(r.answer_correct) for r in results) if kind == "rag" else None,
        cited_correct=sum(bool(r.cited_correct) for r in results) if kind == "rag" else None,
    )


def save(result: EvalRun, path: Path) -> Path:
    """Write the run as JSON to ``path``; return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(result), indent=2) + "\n", encoding="utf-8")
    return path


def run_for(
    profile: str | None,
    target: Target,
    models: Sequence[str],
    questions: Sequence[Question],
    **options,
) -> EvalRun:
    """:func:`run` against the stack of ``profile``, its ``rag`` questions through its Chainlit RAG app.

    Without a stack (``target`` is a bare URL), or without the app running, they are skipped.
    """
    from ops.bench import eval_rag

    rag, why = None, "not a stack's gateway: no Chainlit RAG app to ask"
    if target.stack and any(q.kind == "rag" for q in questions):
        rag, why = eval_rag.open_channel(profile, timeout=options.get("timeout", 120.0))
    return run(target, models, questions, rag=rag, rag_skipped=why, **options)
