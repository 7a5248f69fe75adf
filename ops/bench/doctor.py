"""Benchmark: a full ``ops doctor`` run on a healthy stack, and with the network a black hole.

The stack is brought up once (``ops up``), then ``ops doctor PROFILE --json`` runs several times as a
whole CLI process (what a user waits for, interpreter start-up included) and in-process (the checks
alone). Then the same with the Foundry catalog and the package index pointed at a local TCP server
that accepts connections and never answers, the way a firewall that drops packets looks. Figures are
medians and maxima; the goal (issue "ops doctor"): under 2 s healthy, under 5 s with the black hole.

    ops bench-doctor [PROFILE] [--runs 5] [--keep]
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from unittest import mock

from ops import lifecycle
from ops import plan as stack_plan
from ops.doctor.runner import diagnose
from ops.settings import OPS_CATALOG_TIMEOUT, OPS_CATALOG_URL, Settings


@dataclass(frozen=True)
class Timing:
    """One condition's figures, in seconds."""

    condition: str
    cli: list[float]
    in_process: list[float]
    summary: dict[str, int]
    not_ok: list[str]  # "check: status" of the last CLI run, for the checks that were not ok
    slowest: tuple[str, float]  # the slowest check of the last in-process run


@contextlib.contextmanager
def black_hole() -> Iterator[str]:
    """``host:port`` of a TCP server that completes handshakes and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def measure(condition: str, ref: str, runs: int, env: dict[str, str], say: Callable[[str], None]) -> Timing:
    """Run doctor ``runs`` times as a CLI process and in-process with ``env`` applied."""
    cli, inner = [], []
    summary: dict[str, int] = {}
    not_ok: list[str] = []
    slowest = ("", 0.0)
    with mock.patch.dict(os.environ, env):
        for i in range(runs):
            say(f"{condition}: run {i + 1}/{runs}")
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "ops", "doctor", ref, "--json"],
                capture_output=True,
                text=True,
                timeout=120,
            )
            cli.append(time.perf_counter() - started)
            report_json = json.loads(done.stdout)
            summary = report_json["summary"]
            not_ok = [f"{c['name']}: {c['status']}" for c in report_json["checks"] if c["status"] != "ok"]
            started = time.perf_counter()
            report = diagnose(ref, settings=Settings.from_env())
            inner.append(time.perf_counter() - started)
            slow = max(report.checks, key=lambda r: r.seconds)
            slowest = (slow.name, slow.seconds)
    return Timing(condition, cli, inner, summary, not_ok, slowest)


def run(ref: str = "workshop", runs: int = 5, keep: bool = False, say=lambda _: None) -> list[Timing]:
    """Bring ``ref`` up, time doctor healthy and with a black hole, then take it down unless ``keep``."""
    plan = stack_plan.load(ref)
    loaded = plan.loaded
    say(f"ops up {loaded.name}")
    lifecycle.up(plan, say=say)
    try:
        timings = [measure("healthy", str(loaded.path), runs, {}, say)]
        with black_hole() as hole:
            env = {
                OPS_CATALOG_URL: f"https://{hole}/asset-gallery/v1.0/models",
                OPS_CATALOG_TIMEOUT: "3",
                "PIP_INDEX_URL": f"https://{hole}/simple/",
            }
            timings.append(measure("catalog + index a black hole", str(loaded.path), runs, env, say))
    finally:
        if not keep:
            say(f"ops down {loaded.name}")
            lifecycle.down(plan)
    return timings
