"""Backup and restore without Docker: the secret box, the state part of an archive, restore's refusals
and the CLI's one-line errors (volumes and pauses: tests/integration/test_backup_restore.py)."""

from __future__ import annotations

import gzip
import json
import sqlite3
import sys

import pytest

from ops import archive
from ops.backup import restore, secretbox
from ops.backup import restoring as restore_module
from ops.backup.take import snapshot
from ops.cli import main
from ops.errors import ConflictError, UsageError
from ops.state import StackState

PASSPHRASE = "a long enough passphrase"
ADMIN = "admin-password-value-123456"


def make_stack(name: str = "src") -> StackState:
    state = StackState.for_stack(name).ensure()
    state.secrets.set("open-webui-admin-password", ADMIN)
    state.secrets.set("setup-done:open-webui", "1")
    (state.root / "participants.json").write_text('{"added": ["zoe"], "removed": []}')
    (state.root / "versions.json").write_text('{"open-webui": {"version": "0.12.4"}}')
    (state.root / "tls").mkdir()
    (state.root / "tls" / "ca.key").write_text("-----BEGIN PRIVATE KEY----- secret-ca-key")
    with sqlite3.connect(state.usage_db) as db:
        db.execute("create table usage (who text)")
        db.execute("insert into usage values ('zoe')")
    (state.root / "host.log").write_text("a log")
    (state.root / "host.pid").write_text("123")
    return state


def backup(tmp_path, secrets: bool = True, name: str = "src", passphrase: str | None = PASSPHRASE):
    make_stack(name)
    out = tmp_path / f"{name}.backup.tgz"
    report = snapshot(
        name, out, wanted=(), secrets=secrets, passphrase=passphrase, say=print, need_docker=False
    )
    return out, report


def test_the_box_opens_with_its_passphrase_only_and_holds_no_plaintext():
    box = secretbox.seal({"secrets.json": b'{"k": "plain-secret-value"}'}, PASSPHRASE)
    assert b"plain-secret-value" not in box
    assert secretbox.open_box(box, PASSPHRASE) == {"secrets.json": b'{"k": "plain-secret-value"}'}
    with pytest.raises(secretbox.WrongPassphrase, match="does not open"):
        secretbox.open_box(box, "another passphrase")
    with pytest.raises(secretbox.WrongPassphrase):
        secretbox.open_box(box[:-1] + bytes([box[-1] ^ 1]), PASSPHRASE)
    assert secretbox.seal({}, PASSPHRASE) != secretbox.seal({}, PASSPHRASE)  # a fresh salt and nonce


def test_a_backup_holds_the_state_and_encrypted_secrets_never_logs_nor_pids(tmp_path):
    out, report = backup(tmp_path)
    manifest = archive.verify(out, kind="backup")
    assert manifest.sealed and report.secrets and report.sealed
    assert set(manifest.files) == {
        "secrets.box",
        "state/participants.json",
        "state/versions.json",
        "state/usage.sqlite",
    }
    assert manifest.meta["secrets"] == "included" and manifest.meta["setup_done"] == ["setup-done:open-webui"]
    clear = gzip.decompress(out.read_bytes())
    assert ADMIN.encode() not in clear and b"secret-ca-key" not in clear and b"a log" not in clear
    assert out.stat().st_mode & 0o777 == 0o600
    assert not list(tmp_path.glob(".ops-backup-*"))  # the scratch folder is gone


def test_a_backup_without_secrets_says_so_and_needs_no_passphrase(tmp_path):
    out, report = backup(tmp_path, secrets=False, passphrase=None)
    manifest = archive.verify(out, kind="backup")
    assert not manifest.sealed and not report.secrets and manifest.meta["secrets"] == "left out"
    assert "secrets.box" not in manifest.files


@pytest.mark.parametrize(("passphrase", "match"), [(None, "needs a passphrase"), ("short", "shorter than")])
def test_a_backup_with_secrets_refuses_a_missing_or_short_passphrase(tmp_path, passphrase, match):
    with pytest.raises(UsageError, match=match):
        backup(tmp_path, passphrase=passphrase)
    assert not list(tmp_path.glob("*.tgz*"))


def test_restore_as_another_stack_writes_state_and_secrets(tmp_path):
    out, _ = backup(tmp_path)
    report = restore(out, passphrase=PASSPHRASE, as_name="copy")
    state = StackState.for_stack("copy")
    assert state.secrets.get("open-webui-admin-password").reveal() == ADMIN
    assert (state.root / "tls" / "ca.key").read_text().endswith("secret-ca-key")
    assert json.loads((state.root / "participants.json").read_text())["added"] == ["zoe"]
    assert json.loads((state.root / "versions.json").read_text())["open-webui"]["version"] == "0.12.4"
    with sqlite3.connect(state.usage_db) as db:
        assert db.execute("select who from usage").fetchall() == [("zoe",)]
    assert report.secrets == "restored" and report.stack == "copy" and "name: copy" in report.next_step
    assert state.secrets.path.stat().st_mode & 0o777 == 0o600


def test_restore_refuses_a_missing_or_wrong_passphrase_and_changes_nothing(tmp_path):
    out, _ = backup(tmp_path)
    with pytest.raises(UsageError, match="none was given"):
        restore(out, passphrase=None, as_name="copy")
    with pytest.raises(archive.ArchiveError, match="seal does not match"):
        restore(out, passphrase="not the passphrase", as_name="copy")
    assert (
        not StackState.for_stack("copy").root.exists()
        or not StackState.for_stack("copy").secrets.path.exists()
    )


def test_restore_refuses_a_bundle(tmp_path):
    path = tmp_path / "b.tar"
    with archive.ArchiveWriter(path, "bundle") as writer:
        writer.add_bytes("x", b"x")
    with pytest.raises(archive.ArchiveError, match="not a backup"):
        restore(path, passphrase=None, as_name="copy")


def test_restore_over_other_secrets_is_refused_and_force_backs_them_up_first(tmp_path):
    out, _ = backup(tmp_path)
    target = StackState.for_stack("live").ensure()
    target.secrets.set("open-webui-admin-password", "the live admin's password")
    with pytest.raises(ConflictError, match="secret open-webui-admin-password differs"):
        restore(out, passphrase=PASSPHRASE, as_name="live")
    assert target.secrets.get("open-webui-admin-password").reveal() == "the live admin's password"
    report = restore(out, passphrase=PASSPHRASE, as_name="live", force=True)
    assert report.safety_backup is not None and report.safety_backup.is_file()
    assert target.secrets.get("open-webui-admin-password").reveal() == ADMIN
    # The safety backup holds what was there.
    again = restore(report.safety_backup, passphrase=PASSPHRASE, as_name="back")
    assert again.secrets == "restored"
    assert StackState.for_stack("back").secrets.get("open-webui-admin-password").reveal() == (
        "the live admin's password"
    )


def test_restore_over_a_volume_with_data_is_refused(tmp_path, monkeypatch):
    out, _ = backup(tmp_path)
    body = archive.read_manifest(out)
    assert body.meta["volumes"] == []
    # A volume in the archive whose target holds data (Docker faked: the check only).
    monkeypatch.setattr(archive, "verify", lambda *a, **k: _with_volume(body))
    monkeypatch.setattr(archive, "read_manifest", lambda *a, **k: _with_volume(body))
    monkeypatch.setattr("ops.docker_engine.connect", lambda **_: object())
    monkeypatch.setattr(restore_module.reconcile, "containers", lambda *_: {})
    monkeypatch.setattr(restore_module, "is_empty", lambda client, name: False)
    with pytest.raises(ConflictError, match=r"volume ops-copy-data holds data") as caught:
        restore(out, passphrase=PASSPHRASE, as_name="copy")
    assert "--force" in (caught.value.hint or "")


def _with_volume(manifest):
    meta = {**manifest.meta, "volumes": [{"name": "ops-src-data", "key": "data", "service": "", "bytes": 1}]}
    return archive.Manifest(manifest.kind, manifest.created, manifest.ops_version, meta, manifest.files, True)


def test_restore_of_a_backup_without_secrets_keeps_setup_markers_and_warns(tmp_path):
    out, _ = backup(tmp_path, secrets=False, passphrase=None)
    report = restore(out, passphrase=None, as_name="copy")
    state = StackState.for_stack("copy")
    assert state.secrets.get("setup-done:open-webui") is not None
    assert state.secrets.get("open-webui-admin-password") is None
    assert report.secrets == "kept" and any("holds no secrets" in w for w in report.warnings)


def cli(capsys, *args):
    code = main(list(args))
    err = capsys.readouterr().err
    return code, err


def one_line(err: str) -> None:
    assert err.count("error:") == 1 and "hint:" in err and "Traceback" not in err, err


def test_cli_restore_one_line_errors(tmp_path, capsys, monkeypatch):
    out, _ = backup(tmp_path)
    junk = tmp_path / "junk.tgz"
    junk.write_bytes(b"not an archive at all" * 100)
    torn = tmp_path / "torn.tgz"
    torn.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    monkeypatch.delenv("OPS_BACKUP_PASSPHRASE", raising=False)
    cases = [
        ((str(tmp_path / "missing.tgz"),), 2, "no archive at"),
        ((str(junk),), 1, "not an archive"),
        ((str(torn),), 1, "torn"),
        ((str(out), "--as", "Bad Name"), 2, "invalid stack name"),
        ((str(out), "--as", "copy"), 2, "no terminal"),
    ]
    for args, code, text in cases:
        got, err = cli(capsys, "restore", *args)
        assert got == code and text in err, (args, err)
        one_line(err)
    monkeypatch.setenv("OPS_BACKUP_PASSPHRASE", "not the passphrase")
    got, err = cli(capsys, "restore", str(out), "--as", "copy")
    assert got == 1 and "wrong passphrase" in err
    one_line(err)
    empty = tmp_path / "empty-passphrase"
    empty.write_text("")
    monkeypatch.delenv("OPS_BACKUP_PASSPHRASE")
    got, err = cli(capsys, "restore", str(out), "--as", "copy", "--passphrase-file", str(empty))
    assert got == 2 and "is empty" in err
    one_line(err)
    # Over live secrets: refused with the exit code of a conflict, then done with --force.
    StackState.for_stack("live").ensure().secrets.set("open-webui-admin-password", "the live one")
    monkeypatch.setenv("OPS_BACKUP_PASSPHRASE", PASSPHRASE)
    got, err = cli(capsys, "restore", str(out), "--as", "live")
    assert got == 6 and "differs" in err
    one_line(err)
    assert not StackState.for_stack("copy").secrets.path.exists()
    got, err = cli(capsys, "restore", str(out), "--as", "live", "--force")
    assert got == 0, err


def test_cli_backup_of_a_stack_without_services(tmp_path, capsys, monkeypatch):
    profile = tmp_path / "plain.yaml"
    profile.write_text("name: plain\nmodels: {tiny: {path: bundled:tiny-fp32}}\n")
    make_stack("plain")
    monkeypatch.delenv("OPS_BACKUP_PASSPHRASE", raising=False)
    target = tmp_path / "out.backup.tgz"
    got, err = cli(capsys, "backup", str(profile), "-o", str(target))
    assert got == 2 and "no terminal" in err and not target.exists()
    one_line(err)
    got, err = cli(
        capsys, "backup", str(profile), "-o", str(target), "--passphrase-file", str(tmp_path / "nope")
    )
    assert got == 2 and "cannot read the passphrase file" in err
    one_line(err)
    monkeypatch.setenv("OPS_BACKUP_PASSPHRASE", PASSPHRASE)
    code = main(["backup", str(profile), "-o", str(target)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "nothing was paused" in captured.out and "secrets: included, encrypted" in captured.out
    assert ADMIN not in captured.out + captured.err
    got, err = cli(capsys, "backup", str(profile), "-o", str(target))
    assert got == 2 and "never overwrites" in err
    one_line(err)
    monkeypatch.delenv("OPS_BACKUP_PASSPHRASE")
    code = main(["backup", str(profile), "-o", str(tmp_path), "--no-secrets", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["secrets"] is False and report["sealed"] is False
    assert report["path"].startswith(str(tmp_path)) and report["path"].endswith(".backup.tgz")


def test_cli_restore_refuses_a_tampered_archive_and_changes_nothing(tmp_path, capsys, monkeypatch):
    import hashlib
    import io
    import tarfile

    out, _ = backup(tmp_path)
    with tarfile.open(out, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]
    forged = b'{"added": ["mallory"], "removed": []}'
    tampered = tmp_path / "tampered.tgz"
    with tarfile.open(tampered, "w:gz") as tar:
        for info, data in members:
            if info.name == "state/participants.json":
                data = forged
            if info.name == archive.MANIFEST:  # the checksums made to match: only the seal tells
                body = json.loads(data)
                body["files"]["state/participants.json"] = {
                    "size": len(forged),
                    "sha256": hashlib.sha256(forged).hexdigest(),
                }
                data = json.dumps(body).encode()
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    monkeypatch.setenv("OPS_BACKUP_PASSPHRASE", PASSPHRASE)
    got, err = cli(capsys, "restore", str(tampered), "--as", "copy")
    assert got == 1 and "seal does not match" in err
    one_line(err)
    assert not (StackState.for_stack("copy").root / "participants.json").exists()


class FakeContainer:
    def __init__(self, log, name, status, mounts):
        self.log, self.name = log, name
        self.labels: dict[str, str] = {}
        self.attrs = {
            "Image": "sha256:abc",
            "Config": {"Image": "img:1.0"},
            "State": {"Status": status},
            "Mounts": [{"Type": "volume", "Name": n, "RW": rw} for n, rw in mounts],
        }

    @property
    def image(self):
        return type("Image", (), {"tags": ["img:1.0"]})()

    def reload(self):
        pass

    def pause(self):
        self.log.append(f"pause {self.name}")

    def unpause(self):
        self.log.append(f"unpause {self.name}")


def test_only_running_writers_are_paused_and_only_while_their_volumes_are_copied(tmp_path, monkeypatch):
    take_module = sys.modules["ops.backup.take"]  # (the package's `take` is the function)

    log: list[str] = []
    containers = {
        "writer": FakeContainer(log, "writer", "running", [("ops-s-a", True)]),
        "reader": FakeContainer(log, "reader", "running", [("ops-s-a", False)]),
        "stopped": FakeContainer(log, "stopped", "exited", [("ops-s-b", True)]),
    }
    volumes = {"ops-s-a": None, "ops-s-b": None, "ops-s-c": None}

    class Client:
        class volumes:  # noqa: N801
            @staticmethod
            def list():
                return [type("V", (), {"name": n, "attrs": {"Labels": {"team": "x"}}})() for n in volumes]

    def export(client, name, dest, progress=None):
        log.append(f"copy {name}")
        dest.write_bytes(b"tar of " + name.encode())
        return 10

    monkeypatch.setattr("ops.docker_engine.connect", lambda **_: Client())
    monkeypatch.setattr("ops.reconcile.volumes", lambda client, stack: volumes)
    monkeypatch.setattr("ops.reconcile.containers", lambda client, stack: containers)
    monkeypatch.setattr(take_module, "export_volume", export)
    report = snapshot("s", tmp_path / "s.tgz", wanted=(), secrets=False, passphrase=None, say=print)
    assert log == ["pause writer", "copy ops-s-a", "unpause writer", "copy ops-s-b", "copy ops-s-c"]
    assert set(report.paused) == {"writer"} and report.paused["writer"] >= 0
    assert [(c.name, c.key, c.service) for c in report.volumes] == [
        ("ops-s-a", "a", "writer"),
        ("ops-s-b", "b", "stopped"),
        ("ops-s-c", "c", ""),
    ]
    meta = archive.verify(tmp_path / "s.tgz", kind="backup").meta
    assert meta["volumes"][0]["labels"] == {"team": "x"}
    assert meta["services"]["writer"] == {"image_id": "sha256:abc", "image_tag": "img:1.0", "version": "1.0"}
    assert set(meta["pause_seconds"]) == {"writer"}
