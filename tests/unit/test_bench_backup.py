"""``ops bench-backup``'s copy of a profile, and its refusal to reuse a stack it did not make."""

from __future__ import annotations

import pytest

from ops import profiles
from ops.bench import backup
from ops.errors import ConflictError

pytestmark = pytest.mark.unit


def test_the_copy_has_its_own_name_free_loopback_ports_and_participants(tmp_path):
    original = profiles.load("offline")
    copy = backup._variant(original, "offline-bench-backup", 5, tmp_path / "copy.yaml")
    assert copy.name == "offline-bench-backup"
    service = copy.profile.services["open-webui"]
    (port,) = service.ports
    assert str(port).startswith("127.0.0.1:") and not str(port).startswith("127.0.0.1:3000:")
    assert copy.profile.gateway.port != original.profile.gateway.port
    assert copy.profile.participants is not None and copy.profile.participants.count == 5


def test_an_existing_stack_of_that_name_is_refused_before_anything(tmp_path, monkeypatch):
    monkeypatch.setenv("OPS_HOME", str(tmp_path))
    (tmp_path / "stacks" / "offline-bench-backup").mkdir(parents=True)
    monkeypatch.setattr("ops.docker_engine.connect", lambda *a, **k: object())
    monkeypatch.setattr("ops.reconcile.volumes", lambda client, stack: {})
    monkeypatch.setattr("ops.reconcile.containers", lambda client, stack: {})
    with pytest.raises(ConflictError, match="already exists"):
        backup.run("offline")
