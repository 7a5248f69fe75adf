"""``ops bench-classroom``: a room of simulated participants on one model host, with and without a greedy one.

Each participant has its own gateway key and sends a streamed chat message, reads the answer,
thinks for a while (exponential, mean ``think_s``), and sends the next, for ``duration_s``. The
greedy participant instead keeps ``greedy_streams`` requests open back to back, with no think time.
Four runs on a throw-away host: fair sharing on (the profile's defaults: round robin across
callers, ``per_caller`` at once) and off (first come first served, no per-caller limit), each
without and with the greedy participant. Reported per run: the other participants' TTFT p50/p95,
goodput (their requests whose first token came within the objective), Jain's index of every
participant's service rate (:mod:`ops.bench.fairness`), tokens/s and refusals.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx

from ops import paths
from ops.bench.chat import Sample, run_async, stream_chat
from ops.bench.fairness import goodput, jain, service_rate
from ops.bench.host import throwaway_host
from ops.bench.stats import percentile
from ops.bench.target import Target
from ops.plan import StackPlan
from ops.stack import PARTICIPANT_KEY_PREFIX
from ops.state import StackState

GREEDY = "greedy"
PROMPTS = (
    "In two sentences, what is a small language model?",
    "Give one tip for writing a clear e-mail.",
    "Name three fruits and one colour each.",
    "What does a compiler do? Answer briefly.",
    "Suggest a name for a friendly robot.",
)
#: Sharing settings of the two host configurations compared.
SHARING = {
    "fair": "{policy: fair}",
    "off": "{policy: fifo, per_caller: 1000}",
}


@dataclass(frozen=True)
class Request:
    """One message a participant sent, as it saw it (times relative to the run's start)."""

    participant: str
    sent: float
    sample: Sample


@dataclass(frozen=True)
class RunFigures:
    """One run's figures."""

    sharing: str
    greedy: bool
    requests: int
    failed: int
    refused: int
    others_ttft_p50_ms: float
    others_ttft_p95_ms: float
    greedy_ttft_p95_ms: float
    goodput: float
    fairness: float
    tokens_per_s: float
    greedy_share: float
    unserved: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ClassroomBench:
    """All four runs and the settings they ran with."""

    model: str
    participants: int
    duration_s: float
    think_s: float
    max_tokens: int
    greedy_streams: int
    objective_s: float
    runs: list[RunFigures]

    def run(self, sharing: str, greedy: bool) -> RunFigures:
        """The figures of one run."""
        return next(r for r in self.runs if r.sharing == sharing and r.greedy == greedy)

    def rise(self, sharing: str) -> float:
        """How much the other participants' TTFT p95 rose with the greedy one (0.25 = 25%)."""
        calm, busy = self.run(sharing, False), self.run(sharing, True)
        return busy.others_ttft_p95_ms / calm.others_ttft_p95_ms - 1 if calm.others_ttft_p95_ms else 0.0


def figures(
    sharing: str,
    greedy: bool,
    requests: list[Request],
    duration_s: float,
    objective_s: float,
    names: list[str],
) -> RunFigures:
    """The figures of one run from its requests (pure: unit-tested)."""
    others = [r for r in requests if r.participant != GREEDY]
    ok_others = [r.sample for r in others if r.sample.ok]
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    tokens: dict[str, int] = defaultdict(int)
    for r in requests:
        spans[r.participant].append((r.sent, r.sent + r.sample.e2e_s))
        if r.sample.ok:
            tokens[r.participant] += r.sample.output_tokens
    rates = [service_rate(spans[name], tokens[name]) for name in spans]
    greedy_ok = [r.sample.ttft_s for r in requests if r.participant == GREEDY and r.sample.ok]
    served = {r.participant for r in others if r.sample.ok}
    total_tokens = sum(tokens.values())
    return RunFigures(
        sharing=sharing,
        greedy=greedy,
        requests=len(requests),
        failed=sum(1 for r in requests if not r.sample.ok),
        refused=sum(1 for r in requests if r.sample.error.startswith("HTTP 429")),
        others_ttft_p50_ms=percentile([s.ttft_s for s in ok_others], 50) * 1000,
        others_ttft_p95_ms=percentile([s.ttft_s for s in ok_others], 95) * 1000,
        greedy_ttft_p95_ms=percentile(greedy_ok, 95) * 1000,
        goodput=goodput([r.sample.ttft_s if r.sample.ok else None for r in others], objective_s),
        fairness=jain(rates),
        tokens_per_s=total_tokens / duration_s if duration_s else 0.0,
        greedy_share=tokens[GREEDY] / total_tokens if total_tokens else 0.0,
        unserved=[name for name in names if name not in served],
    )


async def _participant(
    url: str,
    key: str,
    name: str,
    until: float,
    think_s: float,
    max_tokens: int,
    rng: random.Random,
    out: list,
) -> None:
    target = Target(url, key)
    async with httpx.AsyncClient(timeout=httpx.Timeout(300, connect=10)) as client:
        await asyncio.sleep(rng.uniform(0, think_s))  # the room does not start typing at one instant
        while time.monotonic() < until:
            message = {"role": "user", "content": rng.choice(PROMPTS)}
            body = {"model": "m", "messages": [message], "max_tokens": max_tokens}
            sent = time.monotonic()
            sample = await stream_chat(client, target, body)
            out.append(Request(name, sent, sample))
            if think_s > 0:
                await asyncio.sleep(rng.expovariate(1 / think_s))


async def _room(url: str, keys: dict[str, str], greedy: int, duration_s, think_s, max_tokens, seed) -> list:
    rng = random.Random(seed)
    out: list[Request] = []
    start = time.monotonic()
    until = start + duration_s
    workers = [
        _participant(url, key, name, until, think_s, max_tokens, random.Random(rng.random()), out)
        for name, key in keys.items()
        if name != GREEDY
    ]
    if greedy:
        workers += [
            _participant(url, keys[GREEDY], GREEDY, until, 0, max_tokens, random.Random(rng.random()), out)
            for _ in range(greedy)
        ]
    await asyncio.gather(*workers)
    return [Request(r.participant, r.sent - start, r.sample) for r in out]


def _profile(model_dir: Path, others: int, sharing: str, port: int) -> str:
    return (
        f"name: classroom\nmodels:\n  m: {{path: {model_dir}}}\n"
        f"participants: {{count: {others}}}\n"
        f"gateway: {{port: {port}, bind: [127.0.0.1], sharing: {sharing}}}\n"
    )


def run(
    model_dir: Path | None = None,
    participants: int = 30,
    duration_s: float = 60,
    think_s: float = 5.0,
    max_tokens: int = 32,
    greedy_streams: int = 8,
    objective_s: float = 2.0,
    seed: int = 7,
    say: Callable[[str], None] = lambda _: None,
) -> ClassroomBench:
    """Run the four scenarios on a throw-away host serving ``model_dir`` (default: the bundled tiny model).

    The greedy participant is one of the ``participants`` (the others number ``participants - 1``).
    """
    model_dir = (model_dir or paths.bundled_model("tiny-fp32")).resolve()
    runs = []
    for sharing, setting in SHARING.items():
        keys: dict[str, str] = {}

        def make_keys(plan: StackPlan, state: StackState, keys: dict[str, str] = keys) -> None:
            assert plan.loaded.profile.participants is not None
            for n in [*plan.loaded.profile.participants.roster, GREEDY]:
                keys[n] = state.secrets.get_or_create(PARTICIPANT_KEY_PREFIX + n).reveal()

        with throwaway_host(
            "classroom",
            partial(_profile, model_dir, participants - 1, setting),
            make_keys,
            say,
            f"sharing {sharing}: starting a model host on {model_dir.name}",
        ) as host:
            names = list(keys)
            url = f"{host.info.url}/v1"
            for greedy in (False, True):
                say(
                    f"sharing {sharing}, {'with' if greedy else 'without'} the greedy participant: "
                    f"{participants - 1} participants for {duration_s:g} s"
                )
                requests = run_async(
                    _room(url, keys, greedy_streams if greedy else 0, duration_s, think_s, max_tokens, seed)
                )
                ran = max((r.sent + r.sample.e2e_s for r in requests), default=duration_s)
                runs.append(figures(sharing, greedy, requests, ran, objective_s, names[:-1]))
    return ClassroomBench(
        model_dir.name, participants, duration_s, think_s, max_tokens, greedy_streams, objective_s, runs
    )
