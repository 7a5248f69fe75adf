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


def test_crash_log_and_every_folder_ops_creates_are_private(tmp_path, monkeypatch, capsys):
    """mkdir's mode reaches the last folder only: each folder ops creates is 0700, the crash log 0600."""
    home = tmp_path / "state" / "deeper" / "ops"
    monkeypatch.setenv("OPS_HOME", str(home))
    monkeypatch.setattr("ops.profiles.load", lambda *_a, **_k: 1 / 0)
    assert main(["up", "demo"]) == 1
    assert mode(home / "crash.log") == 0o600
    for folder in (tmp_path / "state", tmp_path / "state" / "deeper", home):
        assert mode(folder) == 0o700, folder

    state = stack.prepare_state("demo")
    for folder in (home / "stacks", state.root):
        assert mode(folder) == 0o700, folder


def test_an_older_wider_crash_log_and_home_are_tightened(tmp_path, monkeypatch, capsys):
    home = tmp_path / "ops"
    (home / "stacks").mkdir(parents=True)
    os.chmod(home, 0o755)
    os.chmod(home / "stacks", 0o755)
    (home / "crash.log").write_text("old\n")
    os.chmod(home / "crash.log", 0o644)
    monkeypatch.setenv("OPS_HOME", str(home))
    monkeypatch.setattr("ops.profiles.load", lambda *_a, **_k: 1 / 0)
    assert main(["up", "demo"]) == 1
    assert mode(home / "crash.log") == 0o600
    stack.prepare_state("demo")
    assert mode(home) == 0o700 and mode(home / "stacks") == 0o700


@pytest.fixture
def logging_configured():
    import logging

    factory, root = logging.getLogRecordFactory(), logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    logging.setLogRecordFactory(factory)
    root.handlers[:], root.level = handlers, level


def test_uvicorn_loggers_are_masked_too(logging_configured, capsys):
    """uvicorn gives its loggers their own handlers (not the root's filter): their lines are masked as well."""
    import logging

    import uvicorn

    from ops import logs

    value = Secret("uvicorn-leak-" + "x" * 20).reveal()
    logs.configure()
    uvicorn.Config(lambda *a: None, log_level="info")  # applies uvicorn's own logging config
    logging.getLogger("uvicorn.error").warning("rejected key %s", value)
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "1.2.3.4", "GET", f"/?k={value}", "1.1", 200
    )
    try:
        raise RuntimeError(f"bad key {value}")
    except RuntimeError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    logging.getLogger("ops.host").warning("host saw %s", value)
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "rejected key" in text and "GET /?k=" in text and "RuntimeError" in text and "host saw" in text
    assert value not in text
    assert text.count(MASK) >= 4
