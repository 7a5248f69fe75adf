"""Secrets: created once, mode 0600, stable across runs, never in any output."""

from __future__ import annotations

import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest

from ops import stack
from ops.cli import main
from ops.errors import OpsError
from ops.secrets import MASK, Secret, SecretStore, redact
from ops.state import StackState


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_created_once_with_private_modes(ops_home):
    state = stack.prepare_state("demo")
    key = state.secrets.get(stack.GATEWAY_KEY)
    assert key is not None and len(key.reveal()) >= 32
    assert mode(state.secrets.path) == 0o600
    assert mode(state.root) == 0o700
    # Stable across runs: a second preparation (a later `ops up`) reuses the same value.
    again = stack.prepare_state("demo").secrets.get(stack.GATEWAY_KEY)
    assert again == key
    assert mode(state.secrets.path) == 0o600


def test_each_stack_has_its_own(ops_home):
    one = stack.prepare_state("one").secrets.get(stack.GATEWAY_KEY)
    two = stack.prepare_state("two").secrets.get(stack.GATEWAY_KEY)
    assert one != two


def test_concurrent_creation_agrees(tmp_path):
    store = SecretStore(tmp_path / "s" / "secrets.json")
    with ThreadPoolExecutor(8) as pool:
        values = list(pool.map(lambda _: store.get_or_create("k").reveal(), range(16)))
    assert len(set(values)) == 1


def test_secret_never_renders_itself():
    secret = Secret("s3cr3t-value-123")
    assert str(secret) == MASK and repr(secret) == MASK and f"{secret}" == MASK
    assert "s3cr3t" not in str({"key": secret})
    assert redact("token=s3cr3t-value-123;") == f"token={MASK};"


def test_corrupt_store_is_a_clear_error(tmp_path):
    path = tmp_path / "secrets.json"
    path.write_text("{not json")
    with pytest.raises(OpsError) as info:
        SecretStore(path).get("k")
    assert "corrupt" in info.value.message and info.value.hint


def test_absent_from_cli_output_and_crash_log(ops_home, tmp_path, capsys, monkeypatch):
    state = stack.prepare_state("demo")
    value = state.secrets.get(stack.GATEWAY_KEY).reveal()

    # A crash whose message contains the secret: the crash log and the terminal both mask it.
    def boom(*_args, **_kwargs):
        raise RuntimeError(f"upstream rejected key {value}")

    monkeypatch.setattr("ops.profiles.load", boom)
    code = main(["up", "demo"])
    captured = capsys.readouterr()
    assert code == 1
    assert value not in captured.out + captured.err
    assert "unexpected internal error" in captured.err and "crash.log" in captured.err
    log = (ops_home / "crash.log").read_text()
    assert "RuntimeError" in log and MASK in log and value not in log

    monkeypatch.setenv("OPS_DEBUG", "1")
    code = main(["up", "demo"])
    captured = capsys.readouterr()
    assert code == 1 and "Traceback" in captured.err and value not in captured.err


def test_store_file_lists_names_not_values(ops_home):
    state = StackState.for_stack("demo").ensure()
    state.secrets.get_or_create("a")
    assert state.secrets.names() == ["a"]
    data = json.loads(state.secrets.path.read_text())
    assert set(data) == {"a"}
