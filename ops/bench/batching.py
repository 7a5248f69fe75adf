"""Serving many at once: the batching engine against Foundry Local's web service and a static batch.

    python -m ops.bench.batching --model FOLDER [--levels 1,2,4,8,16] [--max-tokens 64] [--repeat 2]

For each path and concurrency level it prints aggregate output tokens/s, time to first token
(p50/p95) and inter-token latency (p50/mean), with the machine's load average before and after:

- ``engine``: :mod:`ops.batching`'s app in a process of its own, loaded by ``ops bench``'s closed-loop
  generator (:func:`ops.bench.load.run`), streamed, greedy, ``max_tokens`` tokens per answer;
- ``foundry``: Foundry Local's web service (foundry-local-sdk, the model registered from the same
  folder) in a process of its own, loaded the same way;
- ``static``: the ceiling: onnxruntime-genai in this process generating N answers as one static batch
  (``GeneratorParams.set_search_options(batch_size=N)``), every answer exactly ``max_tokens`` long.

The servers run in child processes so that the generator's CPU is not the servers' GIL; on a
2-core machine the generator still shares the cores (``client CPU`` is printed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from ops import usage
from ops.bench import load
from ops.bench.stats import median
from ops.bench.target import Target

LEVELS = (1, 2, 4, 8, 16)
#: Greedy answers: every path writes the same text, and the model's answer to the load generator's
#: prompt is longer than 64 tokens, so every answer is ``max_tokens`` long.
GREEDY = {"temperature": 0}


@dataclass(frozen=True)
class Figures:
    """One path at one concurrency level."""

    path: str
    concurrency: int
    tokens_per_s: float
    ttft_p50_ms: float
    ttft_p95_ms: float
    itl_p50_ms: float
    itl_mean_ms: float
    requests: int
    errors: int
    client_cpu_percent: float = 0.0


def requests_for(concurrency: int) -> int:
    """Counted requests at one level: enough for several rounds per stream."""
    return max(8, 3 * concurrency)


# --- the static batch (the ceiling) --------------------------------------------------------------


def static_batch(folder: Path, levels: tuple[int, ...], max_tokens: int, repeat: int) -> list[Figures]:
    """N greedy answers of exactly ``max_tokens`` tokens as one static batch, for each N (median of ``repeat``)."""
    import onnxruntime_genai as og

    model = og.Model(og.Config(str(folder)))
    tokenizer = og.Tokenizer(model)
    messages = [{"role": "user", "content": load.DEFAULT_PROMPT}]
    prompt = tokenizer.apply_chat_template(json.dumps(messages), add_generation_prompt=True)
    length = len(tokenizer.encode(prompt))
    _one_batch(og, model, tokenizer, prompt, length, 1, 8)  # warm-up
    out = []
    for n in levels:
        runs = [_one_batch(og, model, tokenizer, prompt, length, n, max_tokens) for _ in range(repeat)]
        total, first, steps = (median([r[i] for r in runs]) for i in range(3))
        out.append(
            Figures(
                "static",
                n,
                n * max_tokens / total,
                first * 1000,
                max(r[1] for r in runs) * 1000,
                steps * 1000,
                steps * 1000,
                n * repeat,
                0,
            )
        )
    return out


def _one_batch(
    og, model, tokenizer, prompt: str, length: int, n: int, max_tokens: int
) -> tuple[float, float, float]:
    """(total s, first token s, median step s) of one static batch of ``n``."""
    params = og.GeneratorParams(model)
    params.set_search_options(
        batch_size=n, do_sample=False, max_length=length + max_tokens, min_length=length + max_tokens
    )
    generator = og.Generator(model, params)
    started = time.perf_counter()
    generator.append_tokens(tokenizer.encode_batch([prompt] * n))
    marks = []
    while not generator.is_done():
        generator.generate_next_token()
        generator.get_next_tokens()
        marks.append(time.perf_counter())
    steps = [b - a for a, b in zip(marks, marks[1:], strict=False)]
    return marks[-1] - started, marks[0] - started, median(steps)


# --- served paths ----------------------------------------------------------------------------------


@contextmanager
def child(args: list[str], timeout: float = 180.0) -> Iterator[tuple[str, str]]:
    """Run ``python -m ...args`` until it prints ``serving URL [MODEL]``; yield (url, model); stop it after."""
    process = subprocess.Popen(
        [sys.executable, "-m", *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if line.startswith("serving ") or not line:
                break
        if not line.startswith("serving "):
            raise RuntimeError(f"{' '.join(args)} did not start (exit {process.poll()})")
        parts = line.split()
        yield parts[1], parts[2] if len(parts) > 2 else ""
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


def served(path: str, url: str, model: str, levels: tuple[int, ...], max_tokens: int) -> list[Figures]:
    """``ops bench``'s closed-loop generator on ``url``, level by level."""
    out = []
    for level in levels:
        report = load.run(Target(url), model, [level], requests_for(level), max_tokens, extra=GREEDY)
        result = report.levels[0]
        out.append(
            Figures(
                path,
                level,
                result.output_tokens_per_s,
                result.ttft_ms.p50,
                result.ttft_ms.p95,
                result.itl_ms.p50,
                result.itl_ms.mean,
                result.requests,
                result.failed,
                result.client_cpu_percent,
            )
        )
    return out


def serve_foundry(folder: Path) -> None:
    """Foundry Local's web service on ``folder`` (a fresh registration), until terminated."""
    import signal

    from ops.models.foundry import LOCAL_PREFIX, FoundryProvider

    home = Path(tempfile.mkdtemp(prefix="ops-bench-foundry-"))
    provider = FoundryProvider(home / "data", home / "logs")
    provider.start()
    model = provider.register_local("bench", folder)
    model.load()
    print(f"serving {provider.base_url}{LOCAL_PREFIX} {model.id}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(1)
    finally:
        provider.close()


# --- the run ---------------------------------------------------------------------------------------


def load_average() -> str:
    """The 1-minute load average and the pytest runs on this machine right now."""
    one = usage.load_average()  # os.getloadavg is POSIX-only
    tests = subprocess.run(["pgrep", "-c", "-f", "pytest"], capture_output=True, text=True).stdout.strip()
    return f"load {one:.2f}, pytest processes {tests or '0'}"


def run(
    folder: Path,
    paths: list[str],
    levels: tuple[int, ...],
    max_tokens: int,
    repeat: int,
    variants: dict[str, list[str]],
) -> Iterator[tuple[str, Figures]]:
    """Every path at every level, ``repeat`` times; yields (load before and after, figures) as each is measured.

    The servers start once and stay up; the paths take turns level by level, so that what else runs
    on the machine weighs on each of them alike. ``variants`` are engine paths: name -> server args.
    """
    with contextlib.ExitStack() as stack:
        urls: dict[str, tuple[str, str]] = {}
        for path in paths:
            if path in variants:
                args = ["ops.batching.server", "--model", f"bench={folder}", *variants[path]]
                urls[path] = (stack.enter_context(child(args))[0], "bench")
            elif path == "foundry":
                urls[path] = stack.enter_context(
                    child(["ops.bench.batching", "--serve-foundry", str(folder)])
                )
            elif path != "static":
                raise ValueError(f"unknown path {path!r}: engine variants, foundry or static")
        turn = 0
        for _ in range(repeat):
            for level in levels:
                # Each path goes first in turn: whatever the one before leaves running (onnxruntime's
                # spinning threads after the static batch in this process) must not always hit the same one.
                turn += 1
                for path in paths[turn % len(paths) :] + paths[: turn % len(paths)]:
                    before = load_average()
                    if path == "static":
                        figures = static_batch(folder, (level,), max_tokens, 1)[0]
                    else:
                        url, model = urls[path]
                        figures = served(path, url, model, (level,), max_tokens)[0]
                    yield f"{before} -> {load_average()}", figures


def summary(figures: list[Figures]) -> list[Figures]:
    """The median of each figure over the repeats of each (path, level)."""
    groups: dict[tuple[str, int], list[Figures]] = {}
    for f in figures:
        groups.setdefault((f.path, f.concurrency), []).append(f)
    out = []
    for (path, level), group in groups.items():
        values = {
            name: median([getattr(f, name) for f in group])
            for name in (
                "tokens_per_s",
                "ttft_p50_ms",
                "ttft_p95_ms",
                "itl_p50_ms",
                "itl_mean_ms",
                "client_cpu_percent",
            )
        }
        out.append(
            Figures(
                path,
                level,
                requests=sum(f.requests for f in group),
                errors=sum(f.errors for f in group),
                **values,
            )
        )
    return sorted(out, key=lambda f: (f.path, f.concurrency))


def render(figures: list[Figures]) -> str:
    """A plain table."""
    lines = [
        f"{'path':8} {'streams':>7} {'tok/s':>7} {'TTFT p50':>9} {'TTFT p95':>9} {'ITL p50':>8} {'ITL mean':>9} {'errors':>6} {'client':>6}"
    ]
    for f in figures:
        lines.append(
            f"{f.path:8} {f.concurrency:>7} {f.tokens_per_s:>7.0f} {f.ttft_p50_ms:>9.0f} {f.ttft_p95_ms:>9.0f} "
            f"{f.itl_p50_ms:>8.1f} {f.itl_mean_ms:>9.1f} {f.errors:>6} {f.client_cpu_percent:>5.0f}%"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(prog="python -m ops.bench.batching", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="an ONNX Runtime GenAI model folder")
    parser.add_argument("--paths", default="engine,foundry,static")
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)))
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--engine",
        action="append",
        default=[],
        metavar="NAME=ARGS",
        help="an engine path and its ops.batching.server arguments, e.g. lanes2=--lanes=2 (default: engine=)",
    )
    parser.add_argument("--out", type=Path, help="also write every figure as JSON here")
    parser.add_argument("--serve-foundry", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_foundry:
        serve_foundry(args.serve_foundry)
        return
    if args.model is None:
        parser.error("--model is required")
    levels = tuple(int(x) for x in args.levels.split(","))
    variants = dict(_variant(v) for v in args.engine) if args.engine else {"engine": []}
    paths: list[str] = []
    for path in args.paths.split(","):  # "engine" stands for every --engine variant
        paths.extend(variants if path == "engine" else [path])
    every: list[Figures] = []
    print(render([]), flush=True)
    for label, figures in run(args.model, paths, levels, args.max_tokens, args.repeat, variants):
        print(f"{render([figures]).splitlines()[1]}   {label}", flush=True)
        every.append(figures)
    print(f"\nmedians of {args.repeat} run(s)\n{render(summary(every))}", flush=True)
    if args.out:
        args.out.write_text(json.dumps([asdict(f) for f in every], indent=2) + "\n", encoding="utf-8")


def _variant(text: str) -> tuple[str, list[str]]:
    name, _, rest = text.partition("=")
    return name, [arg for arg in rest.split(",") if arg]


if __name__ == "__main__":
    main()
