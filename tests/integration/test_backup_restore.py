"""``ops backup`` and ``ops restore`` with the real engine and the real Open WebUI.

Users and a chat are made through Open WebUI's API; the stack is backed up while it runs (Open
WebUI paused for the copy), taken down with its volumes, restored, brought up again, and the users
sign in and find their chat. Torn, tampered and wrongly unlocked archives change nothing; a restore
over live data is refused unless ``--force``, which backs it up first; ``--as`` restores beside it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import sys
import tarfile
import uuid
from pathlib import Path

import httpx
import pytest

from ops import archive, lifecycle, profiles
from ops.cli import main
from ops.plan import resolve
from ops.services import openwebui
from ops.state import StackState
from tests.integration.hosts import free_port, module_home
from tests.integration.openwebui_stack import SERVICE, open_webui_profile

STACK = f"bkup-{uuid.uuid4().hex[:6]}"
OTHER = f"{STACK}-as"
PASSPHRASE = "correct horse battery staple"
USERS = {"alice": "alice-pass-1234", "bob": "bob-pass-1234"}

home, ops_home = module_home("backup-home")


@pytest.fixture(scope="module")
def stack(home, tmp_path_factory, docker_client, open_webui_image):
    folder = tmp_path_factory.mktemp("backup")
    ui_port = free_port()
    path = open_webui_profile(
        folder, STACK, ui_port, f"{{port: {free_port()}, default_max_tokens: 24}}", image=open_webui_image.tag
    )
    loaded = profiles.load_path(path)
    try:
        lifecycle.up(resolve(loaded))
        url = f"http://127.0.0.1:{ui_port}"
        yield {"path": path, "loaded": loaded, "url": url, "folder": folder, "image": open_webui_image.tag}
    finally:
        lifecycle.down(resolve(loaded, ask_catalog=False), remove_volumes=True)
        other = folder / f"{OTHER}.yaml"
        if other.is_file():
            lifecycle.down(resolve(profiles.load_path(other), ask_catalog=False), remove_volumes=True)
        for volume in docker_client.volumes.list(filters={"label": "ops.stack"}):
            if volume.attrs["Labels"]["ops.stack"].startswith(STACK):
                volume.remove(force=True)


def admin_headers(stack_name: str, url: str) -> dict[str, str]:
    secrets = StackState.for_stack(stack_name).secrets
    token = openwebui.sign_in(
        url, secrets.get(openwebui.ADMIN_EMAIL).reveal(), secrets.get(openwebui.ADMIN_PASSWORD)
    )
    return {"authorization": f"Bearer {token}"}


def sign_in(url: str, name: str) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/auths/signin",
        json={"email": f"{name}@example.org", "password": USERS[name]},
        timeout=60,
    )


def user_chats(url: str, name: str) -> list[str]:
    signed = sign_in(url, name)
    assert signed.status_code == 200, signed.text
    headers = {"authorization": f"Bearer {signed.json()['token']}"}
    listed = httpx.get(f"{url}/api/v1/chats/", headers=headers, timeout=30)
    assert listed.status_code == 200, listed.text
    return [c["title"] for c in listed.json()]


def volumes_of(docker_client, name: str) -> set[str]:
    return {v.name for v in docker_client.volumes.list(filters={"label": f"ops.stack={name}"})}


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def archive_path(stack) -> Path:
    return stack["folder"] / "made-while-running.backup.tgz"


def test_1_backup_of_the_running_stack_then_down_volumes_restore_up_finds_users_and_chats(
    stack, archive_path, capsys, monkeypatch, docker_client
):
    url = stack["url"]
    headers = admin_headers(STACK, url)
    for name, password in USERS.items():
        made = httpx.post(
            f"{url}/api/v1/auths/add",
            json={"name": name, "email": f"{name}@example.org", "password": password, "role": "user"},
            headers=headers,
            timeout=60,
        )
        assert made.status_code == 200, made.text
    signed = sign_in(url, "alice")
    chat = {"chat": {"title": "alice's kept chat", "messages": []}}
    created = httpx.post(
        f"{url}/api/v1/chats/new",
        json=chat,
        headers={"authorization": f"Bearer {signed.json()['token']}"},
        timeout=30,
    )
    assert created.status_code == 200, created.text

    monkeypatch.setenv("OPS_BACKUP_PASSPHRASE", PASSPHRASE)
    code, out, err = run(capsys, "backup", str(stack["path"]), "-o", str(archive_path))
    sys.__stdout__.write(out + err)  # shown with -s, not captured again
    assert code == 0, err
    paused = re.search(rf"{SERVICE}: paused ([\d.]+) s", out)
    assert paused and 0 < float(paused.group(1)) < 10, out
    assert "secrets: included, encrypted" in out
    assert archive_path.stat().st_mode & 0o777 == 0o600

    manifest = archive.read_manifest(archive_path)
    meta = manifest.meta
    assert manifest.sealed and meta["stack"] == STACK and meta["secrets"] == "included"
    assert meta["profile"]["sha256"] == hashlib.sha256(stack["path"].read_bytes()).hexdigest()
    assert meta["services"][SERVICE]["image_id"].startswith("sha256:")
    assert meta["pause_seconds"][SERVICE] == pytest.approx(float(paused.group(1)), abs=0.01)
    assert [v["name"] for v in meta["volumes"]] == [f"ops-{STACK}-data"]
    # No secret in clear anywhere in the archive.
    clear = gzip.decompress(archive_path.read_bytes())
    for name in (openwebui.ADMIN_PASSWORD, openwebui.SECRET_KEY):
        assert StackState.for_stack(STACK).secrets.get(name).reveal().encode() not in clear

    lifecycle.down(resolve(stack["loaded"], ask_catalog=False), remove_volumes=True)
    assert volumes_of(docker_client, STACK) == set()
    code, out, err = run(capsys, "restore", str(archive_path), "--json")
    sys.__stdout__.write(out + err)  # shown with -s, not captured again
    assert code == 0, err
    report = json.loads(out)
    assert report["volumes"] == [f"ops-{STACK}-data"] and report["secrets"] == "restored"
    assert "ops up" in report["next_step"]

    lifecycle.up(resolve(stack["loaded"]))  # its chain signs in as the restored admin
    listed = httpx.get(f"{url}/api/v1/users/all", headers=admin_headers(STACK, url), timeout=30).json()
    emails = {u["email"] for u in listed.get("users", listed) if isinstance(u, dict)}
    assert {"alice@example.org", "bob@example.org"} <= emails
    assert user_chats(url, "alice") == ["alice's kept chat"]
    assert sign_in(url, "bob").status_code == 200


def rewrite(source: Path, dest: Path, change_member, fix_manifest: bool) -> None:
    """A copy of ``source`` with one member changed, its manifest's checksum updated if asked."""
    with tarfile.open(source, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]
    changed: dict[str, bytes] = {}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for info, data in members:
            if info.name.startswith("volumes/") and not changed:
                data = change_member(data)
                changed[info.name] = data
            if info.name == archive.MANIFEST and fix_manifest:
                body = json.loads(data)
                for name, new in changed.items():
                    body["files"][name] = {"size": len(new), "sha256": hashlib.sha256(new).hexdigest()}
                data = json.dumps(body).encode()
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    dest.write_bytes(out.getvalue())


def flip(data: bytes) -> bytes:
    index = len(data) // 2
    return data[:index] + bytes([data[index] ^ 0xFF]) + data[index + 1 :]


def test_2_torn_tampered_or_wrongly_unlocked_archives_change_nothing(
    stack, archive_path, capsys, monkeypatch, docker_client, tmp_path
):
    monkeypatch.setenv("OPS_BACKUP_PASSPHRASE", PASSPHRASE)
    torn = tmp_path / "torn.backup.tgz"
    torn.write_bytes(archive_path.read_bytes()[: archive_path.stat().st_size // 2])
    tampered = tmp_path / "tampered.backup.tgz"
    rewrite(archive_path, tampered, flip, fix_manifest=True)
    corrupt = tmp_path / "corrupt.backup.tgz"
    rewrite(archive_path, corrupt, flip, fix_manifest=False)
    target = f"{STACK}-bad"
    state = StackState.for_stack(target)
    cases = {
        torn: "torn",
        tampered: "seal does not match",
        corrupt: "does not match its checksum",
    }
    for path, expected in cases.items():
        code, out, err = run(capsys, "restore", str(path), "--as", target)
        assert code != 0 and expected in err, err
        assert "Traceback" not in err and err.count("error:") == 1
        assert volumes_of(docker_client, target) == set()
        assert not state.secrets.path.exists()
    monkeypatch.setenv("OPS_BACKUP_PASSPHRASE", "not the passphrase")
    code, out, err = run(capsys, "restore", str(archive_path), "--as", target)
    assert code != 0 and "wrong passphrase" in err, err
    assert volumes_of(docker_client, target) == set() and not state.secrets.path.exists()


def test_3_restore_over_live_data_is_refused_and_force_backs_it_up_first(
    stack, archive_path, capsys, monkeypatch, docker_client
):
    monkeypatch.setenv("OPS_BACKUP_PASSPHRASE", PASSPHRASE)
    code, _, err = run(capsys, "restore", str(archive_path))
    assert code == 6 and "has containers" in err and f"ops down {STACK}" in err, err
    lifecycle.down(resolve(stack["loaded"], ask_catalog=False))  # volumes kept: live data
    # A stopped stack backs up too, without a pause; --no-secrets needs no passphrase and says so.
    monkeypatch.delenv("OPS_BACKUP_PASSPHRASE")
    stopped = stack["folder"] / "stopped.backup.tgz"
    code, out, err = run(capsys, "backup", str(stack["path"]), "-o", str(stopped), "--no-secrets", "--json")
    assert code == 0, err
    made = json.loads(out)
    assert made["paused"] == {} and not made["secrets"] and not made["sealed"]
    assert [v["name"] for v in made["volumes"]] == [f"ops-{STACK}-data"]
    assert archive.verify(stopped, kind="backup").meta["secrets"] == "left out"
    monkeypatch.setenv("OPS_BACKUP_PASSPHRASE", PASSPHRASE)
    secrets_before = StackState.for_stack(STACK).secrets.path.read_bytes()
    code, _, err = run(capsys, "restore", str(archive_path))
    assert code == 6 and "holds data" in err and "--force" in err, err
    assert StackState.for_stack(STACK).secrets.path.read_bytes() == secrets_before

    code, out, err = run(capsys, "restore", str(archive_path), "--force", "--json")
    sys.__stdout__.write(out + err)  # shown with -s, not captured again
    assert code == 0, err
    report = json.loads(out)
    safety = Path(report["safety_backup"])
    assert safety.is_file() and safety.stat().st_mode & 0o777 == 0o600
    kept = archive.verify(safety, kind="backup")
    assert [v["name"] for v in kept.meta["volumes"]] == [f"ops-{STACK}-data"]
    lifecycle.up(resolve(stack["loaded"]))
    assert user_chats(stack["url"], "alice") == ["alice's kept chat"]


def test_4_restore_as_another_name_comes_up_with_the_same_users(
    stack, archive_path, capsys, monkeypatch, docker_client
):
    monkeypatch.setenv("OPS_BACKUP_PASSPHRASE", PASSPHRASE)
    code, out, err = run(capsys, "restore", str(archive_path), "--as", OTHER)
    sys.__stdout__.write(out + err)  # shown with -s, not captured again
    assert code == 0, err
    assert f"name: {OTHER}" in out
    assert volumes_of(docker_client, OTHER) == {f"ops-{OTHER}-data"}
    ui_port = free_port()
    gateway = f"{{port: {free_port()}, default_max_tokens: 24}}"
    path = open_webui_profile(stack["folder"], OTHER, ui_port, gateway, image=stack["image"])
    lifecycle.up(resolve(profiles.load_path(path)))
    url = f"http://127.0.0.1:{ui_port}"
    assert user_chats(url, "alice") == ["alice's kept chat"]
    assert sign_in(url, "bob").status_code == 200


def test_5_a_backup_without_secrets_restored_on_the_same_machine_keeps_its_secrets_and_comes_up(
    stack, capsys, monkeypatch, docker_client
):
    stopped = stack["folder"] / "stopped.backup.tgz"  # made by test 3, with --no-secrets and no passphrase
    monkeypatch.delenv("OPS_BACKUP_PASSPHRASE", raising=False)
    secrets_before = StackState.for_stack(STACK).secrets.get(openwebui.ADMIN_PASSWORD)
    lifecycle.down(resolve(stack["loaded"], ask_catalog=False), remove_volumes=True)
    code, out, err = run(capsys, "restore", str(stopped), "--json")
    sys.__stdout__.write(out + err)
    assert code == 0, err
    report = json.loads(out)
    assert report["secrets"] == "kept" and "holds no secrets" in report["warnings"][0]
    assert StackState.for_stack(STACK).secrets.get(openwebui.ADMIN_PASSWORD) == secrets_before
    lifecycle.up(resolve(stack["loaded"]))  # the setup marker came back: no second admin is attempted
    assert user_chats(stack["url"], "alice") == ["alice's kept chat"]
