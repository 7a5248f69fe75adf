"""A throw-away model host for a benchmark: a profile text in a temporary OPS_HOME, started, stopped."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ops import plan as stack_plan
from ops import profiles
from ops.host import process
from ops.host.process import HostInfo
from ops.plan import StackPlan
from ops.settings import Settings
from ops.stack import prepare_state
from ops.state import StackState


@dataclass(frozen=True)
class ThrowawayHost:
    """A running throw-away host: its plan, state (secrets) and address."""

    plan: StackPlan
    state: StackState
    info: HostInfo


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a throw-away host)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def throwaway_host(
    name: str,
    profile_text: Callable[[int], str],
    prepare: Callable[[StackPlan, StackState], None] = lambda _plan, _state: None,
    say: Callable[[str], None] = lambda _: None,
    message: str = "starting a model host",
) -> Iterator[ThrowawayHost]:
    """Start the profile ``profile_text(port)`` (stack ``name``, gateway on a free port) in a temporary home.

    ``prepare`` runs after the state is made and before the host starts (to make secrets the host reads).
    The host is stopped and the home removed however the block ends.
    """
    with tempfile.TemporaryDirectory(prefix=f"ops-{name}-") as tmp:
        home = Path(tmp)
        profile = home / f"{name}.yaml"
        profile.write_text(profile_text(free_port()))
        settings = Settings.from_env({"OPS_HOME": str(home)})
        plan = stack_plan.resolve(profiles.load_path(profile, settings), settings)
        state = prepare_state(name, settings)
        prepare(plan, state)
        say(message)
        info, _ = process.start(plan, state, ["127.0.0.1"], timeout=300)
        try:
            yield ThrowawayHost(plan, state, info)
        finally:
            process.stop(state)
