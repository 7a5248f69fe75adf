"""``ops`` on Windows and macOS: its code runs without Python's POSIX-only parts.

``without_posix.py`` (beside this file) runs in a fresh interpreter, where every module of the
``ops`` package sees no ``fcntl``, ``resource``, ``termios``, ``pwd``, ``grp`` and an ``os``
without ``getuid``, ``fchmod``, ``getloadavg``, ``killpg``... (see its docstring). There every
module must import, every command's ``--help`` and ``ops validate`` of every shipped profile must
exit 0. What only runs later (a host's start, a lock) is type-checked for Windows and macOS by
``just lint`` (mypy --platform win32 / darwin) instead.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("without_posix.py")


@pytest.fixture(scope="module")
def findings(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("portable") / "findings.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(out)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text(encoding="utf-8"))


def test_the_guard_hides_posix_from_ops_modules_only(findings):
    assert findings["guard"] == dict.fromkeys(findings["guard"], True)
    assert len(findings["guard"]) == 6


def test_every_module_imports_without_posix(findings):
    assert len(findings["modules"]) > 100  # the whole package was walked
    assert set(findings["not_imported"]) == {"ops.__main__"}  # each with its reason in the script
    assert findings["import_failures"] == {}


def test_every_command_help_works_without_posix(findings):
    helps = findings["help"]
    assert {"(ops)", "up", "down", "host run", "model list", "rag ingest"} <= set(helps)
    assert {name: h for name, h in helps.items() if h["code"] != 0} == {}


def test_every_shipped_profile_validates_without_posix(findings):
    shipped = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "profiles").glob("*.yaml"))
    assert sorted(findings["validate"]) == shipped and shipped
    assert {name: v for name, v in findings["validate"].items() if v["code"] != 0} == {}
