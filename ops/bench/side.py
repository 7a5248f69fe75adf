"""``ops bench --model A,B``: several models (the same model on two serving paths) measured side by side.

The levels are interleaved (each level runs for every model before the next level), and which model
goes first rotates from level to level, so a machine that warms up or slows down over the run does
not favour one of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import httpx

from ops.bench.load import LevelResult, LoadReport, Progress, run
from ops.bench.target import Target


def run_side_by_side(
    target: Target,
    models: list[str],
    levels: list[int],
    requests: int,
    max_tokens: int = 128,
    warmup: int | None = None,
    timeout: float = 300.0,
    progress: Callable[[str, Progress], None] = lambda _m, _p: None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[LoadReport]:
    """One :class:`LoadReport` per model (in ``models``' order), their levels measured in turn.

    ``transport`` replaces the network (tests pass an in-memory one).
    """
    parts: dict[str, list[LoadReport]] = {m: [] for m in models}
    for index, level in enumerate(levels):
        turn = models[index % len(models) :] + models[: index % len(models)]
        for model in turn:
            report = run(
                target,
                model,
                [level],
                requests,
                max_tokens,
                warmup,
                timeout,
                _tell(progress, model),
                transport,
            )
            parts[model].append(report)
    merged = []
    for model in models:
        reports = parts[model]
        notes = tuple(dict.fromkeys(n for r in reports for n in r.notes))
        merged.append(
            dataclasses.replace(reports[0], levels=tuple(r.levels[0] for r in reports), notes=notes)
        )
    return merged


def _tell(progress: Callable[[str, Progress], None], model: str) -> Callable[[Progress], None]:
    return lambda event: progress(model, event)


@dataclasses.dataclass(frozen=True)
class Row:
    """One concurrency level of one model, next to the first model's (the baseline)."""

    concurrency: int
    model: str
    tokens_per_s: float
    ttft_p50_ms: float
    ttft_p95_ms: float
    itl_p50_ms: float
    #: This model's output tokens/s over the baseline's at the same level (1.0 for the baseline).
    speedup: float


def comparison(reports: list[LoadReport]) -> list[Row]:
    """Rows for each level and model; the first report is the baseline the others are compared with."""
    rows = []
    baseline = {level.concurrency: level for level in reports[0].levels}
    for report in reports:
        for level in report.levels:
            base: LevelResult = baseline[level.concurrency]
            rows.append(
                Row(
                    level.concurrency,
                    report.model,
                    level.output_tokens_per_s,
                    level.ttft_ms.p50,
                    level.ttft_ms.p95,
                    level.itl_ms.p50,
                    level.output_tokens_per_s / base.output_tokens_per_s if base.output_tokens_per_s else 0.0,
                )
            )
    return sorted(rows, key=lambda r: r.concurrency)
