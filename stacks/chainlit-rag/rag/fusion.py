"""Reciprocal rank fusion: one ranking from several, by rank alone.

BM25 scores and cosine similarities live on different scales, so they are not added; each list
contributes ``weight / (k + rank)`` for every item it ranks (Cormack, Clarke and Büttcher, 2009).
``k = 60`` is the paper's constant: it keeps one list's first place from outweighing agreement
between lists.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

RRF_K = 60


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[Hashable]],
    k: int = RRF_K,
    weights: Sequence[float] | None = None,
) -> list[tuple[Hashable, float]]:
    """Items of all ``rankings`` (best first) with their fused score, best first.

    Ties keep the order in which items were first seen, so the result is deterministic.
    """
    if weights is not None and len(weights) != len(rankings):
        raise ValueError("one weight per ranking")
    scores: dict[Hashable, float] = {}
    for position, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[position]
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    first_seen = {item: i for i, item in enumerate(scores)}
    return sorted(scores.items(), key=lambda pair: (-pair[1], first_seen[pair[0]]))
