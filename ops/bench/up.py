"""Benchmark: warm ``ops up`` (images present) from stopped to ready, against a lower bound.

The lower bound, measured in the same run: the same containers created and started directly with
the SDK, all in parallel, their readiness polled every 10 ms (and the model host started by hand at
the same time). Also the no-change re-run and ``ops status`` times, each as a whole CLI process.
"""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from ops import lifecycle, reconcile
from ops import plan as stack_plan
from ops.bench.stats import median
from ops.docker_engine import connect
from ops.host import process
from ops.network import bind_addresses
from ops.probes import wait_for
from ops.stack import prepare_state


@dataclass(frozen=True)
class UpBench:
    """The figures of one run (seconds; medians over ``runs``)."""

    profile: str
    runs: int
    warm_up_s: float
    lower_bound_s: float
    rerun_s: float
    status_s: float

    @property
    def ratio(self) -> float:
        """Warm ``ops up`` over the lower bound."""
        return self.warm_up_s / self.lower_bound_s if self.lower_bound_s else 0.0


def _cli(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ops", *args], check=True, capture_output=True)
    return time.perf_counter() - started


def run(ref: str = "offline", runs: int = 3, say: Callable[[str], None] = lambda _: None) -> UpBench:
    """Measure ``ops up`` of profile ``ref`` (brought up once first so images exist)."""
    plan = stack_plan.load(ref)
    loaded = plan.loaded
    say(f"first ops up {loaded.name} (builds images if needed)")
    lifecycle.up(plan)
    warm, bound, rerun, status = [], [], [], []
    for i in range(runs):
        lifecycle.down(plan)
        say(f"run {i + 1}/{runs}: warm ops up")
        warm.append(_cli("up", str(loaded.path)))
        rerun.append(_cli("up", str(loaded.path)))
        status.append(_cli("status", str(loaded.path)))
        images = {name: c.attrs["Image"] for name, c in reconcile.containers(connect(), loaded.name).items()}
        specs = lifecycle.declared_specs(plan)
        lifecycle.down(plan)
        say(f"run {i + 1}/{runs}: lower bound")
        bound.append(_lower_bound(loaded, specs, images))
        lifecycle.down(plan)
    return UpBench(loaded.name, runs, median(warm), median(bound), median(rerun), median(status))


def _lower_bound(loaded, specs, images: dict[str, str]) -> float:
    client = connect(timeout=60)
    state = prepare_state(loaded.name)
    started = time.perf_counter()
    plan = stack_plan.resolve(loaded)  # the catalog asked, as `ops up` does
    addresses, _ = bind_addresses(plan.gateway.bind, plan.name, client)

    def host() -> None:
        process.start(plan, state, addresses, timeout=600)

    def container(spec) -> None:
        kwargs = {**spec.create_kwargs(), "image": images[spec.service]}
        created = client.containers.create(**kwargs)
        created.start()
        wait_for(spec.probe(created), spec.timeout, interval=0.01)

    for name in {m.source for s in specs.values() for m in s.mounts if m.kind == "volume"}:
        if not client.volumes.list(filters={"name": name}):
            client.volumes.create(name)
    with concurrent.futures.ThreadPoolExecutor(len(specs) + 1) as pool:
        futures = [pool.submit(host)] + [pool.submit(container, s) for s in specs.values()]
        for future in futures:
            future.result()
    elapsed = time.perf_counter() - started
    for c in reconcile.containers(client, loaded.name).values():
        c.remove(force=True)
    return elapsed
