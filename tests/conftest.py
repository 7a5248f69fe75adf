"""Shared fixtures: tier markers by folder, an isolated state directory, and gates on real dependencies.

A test that needs a real dependency (Docker, a browser) fails when it is missing in CI
(``OPS_CI=1``, set by ``.ci/run``) and skips only on a developer's machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("OPS_CI") == "1"


def pytest_collection_modifyitems(config, items):
    """Mark each test with the tier of the folder it lives in."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in ("unit", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture(autouse=True)
def ops_home(tmp_path, monkeypatch) -> Path:
    """Every test gets its own state directory, so no test sees another's secrets or pid files."""
    home = tmp_path / "ops-home"
    monkeypatch.setenv("OPS_HOME", str(home))
    monkeypatch.delenv("OPS_DEBUG", raising=False)
    return home


@pytest.fixture
def silent_server():
    """``host:port`` of a TCP server that accepts connections and never says a word."""
    from ops.bench.doctor import black_hole

    with black_hole() as hole:
        yield hole


def missing(what: str) -> None:
    """A real dependency is missing: fail in CI (``OPS_CI=1``), skip only on a developer's machine."""
    if IN_CI:
        pytest.fail(f"{what} is required in CI and is missing")
    pytest.skip(f"{what} not available on this machine")
