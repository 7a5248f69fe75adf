"""A pytest plugin shipped with ``ops``: a fixture that brings a profile up for the test session.

Installed as the ``ops`` pytest plugin (entry point ``pytest11``), so any test suite can write::

    def test_chat(ops_stack):
        client = OpenAI(base_url=ops_stack.gateway_url, api_key=ops_stack.key)

and run ``pytest --ops-profile offline`` (or set ``ops_profile = offline`` in its pytest ini).
Everything the session created is removed by label afterwards; volumes too (only those the
session created) unless ``--ops-keep-volumes`` is given. A stack of that name that already runs
is refused, never shared: the session's end would take it down.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class RunningStack:
    """The stack a test session runs against."""

    name: str
    gateway_url: str
    key: str
    services: dict[str, str]  # service -> base URL on the host
    report: object  # ops.lifecycle.UpReport


def pytest_addoption(parser):
    """``--ops-profile`` / ``ops_profile``: the profile the ``ops_stack`` fixture brings up."""
    group = parser.getgroup("ops")
    group.addoption(
        "--ops-profile", default=None, help="ops profile (name or path) for the ops_stack fixture"
    )
    group.addoption(
        "--ops-keep-volumes", action="store_true", help="keep the stack's volumes after the session"
    )
    parser.addini("ops_profile", "ops profile (name or path) for the ops_stack fixture", default="offline")


@pytest.fixture(scope="session")
def ops_stack(request) -> Iterator[RunningStack]:
    """Bring the configured profile up once per session; take down (by label) only what the session made.

    A stack of that name that already runs is never shared: the session would end by removing
    it. Volumes that existed before the session (a user's chats, a RAG library) are kept; only
    the ones the session created are removed, and none with ``--ops-keep-volumes``.
    """
    from ops import inventory, lifecycle
    from ops import plan as stack_plan
    from ops.errors import OpsError
    from ops.stack import GATEWAY_KEY
    from ops.state import StackState

    ref = request.config.getoption("--ops-profile") or request.config.getini("ops_profile")
    try:
        plan = stack_plan.load(ref)
    except OpsError as exc:
        pytest.fail(f"ops profile {ref}: {exc.message} (hint: {exc.hint})", pytrace=False)
    before = inventory.status(plan.name)
    if before.host.running or before.containers:
        pytest.fail(
            f"stack {plan.name} already runs; the ops_stack fixture does not share a running stack, "
            f"since it takes its stack down at the end (hint: `ops down {plan.name}` first, or point "
            "--ops-profile at a profile with its own `name:` and ports)",
            pytrace=False,
        )
    keep_all = request.config.getoption("--ops-keep-volumes")

    def take_down() -> None:
        lifecycle.down(plan, remove_volumes=not keep_all, spare_volumes=frozenset(before.volumes))

    try:
        report = lifecycle.up(plan)
    except OpsError as exc:
        take_down()
        pytest.fail(f"ops up {ref}: {exc.message} (hint: {exc.hint})", pytrace=False)
    key = StackState.for_stack(plan.name).secrets.get(GATEWAY_KEY)
    try:
        yield RunningStack(
            plan.name,
            report.gateway_url,
            key.reveal() if key else "",
            {s.service: s.url for s in report.services},
            report,
        )
    finally:
        take_down()
