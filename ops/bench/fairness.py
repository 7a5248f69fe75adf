"""Fairness figures of a classroom run: Jain's index of the participants' service rates, and goodput.

Pure functions of what each participant asked for and got, so they are unit-tested on fixed inputs.

**Service rate.** Participants ask for different amounts (a greedy one runs 8 streams back to back,
the others send a message now and then), so equal totals are not the goal. What a fair server owes
every participant is an equal rate *while that participant is waiting for something* (the
generalised processor sharing ideal that fair queueing approximates). So each participant's figure
is the answer tokens it received divided by the time it had at least one request open. Jain's index
of those rates, ``(sum x)^2 / (n * sum x^2)``, is 1 when every participant was served at the same
rate and ``1/n`` when one took everything: a greedy participant whose 8 streams all run beside 29
single ones scores (29+8)^2 / (30 (29+64)) = 0.49; held to 2 at once, 0.97.
"""

from __future__ import annotations


def jain(values: list[float]) -> float:
    """Jain's fairness index of ``values`` (1.0 for none or all zero)."""
    if not values or not any(values):
        return 1.0
    total = sum(values)
    return total * total / (len(values) * sum(v * v for v in values))


def busy_time(intervals: list[tuple[float, float]]) -> float:
    """Seconds covered by the union of ``(start, end)`` intervals (a participant's open requests)."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total


def service_rate(intervals: list[tuple[float, float]], tokens: int) -> float:
    """Answer tokens per second while the participant had a request open (0 when it had none)."""
    busy = busy_time(intervals)
    return tokens / busy if busy > 0 else 0.0


def goodput(ttfts: list[float | None], objective_s: float) -> float:
    """The fraction of requests answered with a first token within ``objective_s`` (failures count as misses)."""
    if not ttfts:
        return 0.0
    return sum(1 for t in ttfts if t is not None and t <= objective_s) / len(ttfts)
