"""``ops upgrade`` against the real Docker engine: a version step that works, one that fails, and
``ops up`` noticing a changed version; the real Open WebUI 0.12.3 -> 0.12.4 with users and chats.

Small images stand for the versions of a service (built once per machine from the test web image,
itself from the ops base image): each writes a line to ``/data/migrations`` when it starts (its
"migration"), and version 2 exits at once (a release whose migration fails), version 4 works on the copy and fails after
the switch (the data it touched is put back).
"""

from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path

import pytest

from ops.cli import main
from ops.labels import UPGRADE, VERSION
from tests.integration.hosts import free_port
from tests.integration.webimage import derived_image, web_image  # noqa: F401  (fixture)

STACK = "upg"
VOLUME = f"ops-{STACK}-data"
CONTAINER = f"ops-{STACK}-web"


def _migrate(version: str) -> str:
    """A migration: a line in /data/migrations, written once (a migration that ran is not run again)."""
    return f"grep -qsx migrated-{version} /data/migrations || echo migrated-{version} >> /data/migrations"


#: Each version's start: its migration, then the web server (version 2 fails instead).
SERVE = "exec python3 -m http.server 8080 --bind 0.0.0.0"
STARTS = {
    "1": f"{_migrate('1')}; {SERVE}",
    "2": f"{_migrate('2')}; echo 'migration failed' >&2; exit 3",
    "3": f"{_migrate('3')}; {SERVE}",
    # Works on the copy (the trial container's host name is web-upgrade), fails on the real data.
    "4": f"{_migrate('4')}; if [ $(hostname) = web ]; then exit 4; fi; {SERVE}",
}

#: The images' name changes with what they do, so a changed test never runs an older build.
REPOSITORY = "ops-test-upgrade-" + hashlib.sha256(repr(STARTS).encode()).hexdigest()[:8]


@pytest.fixture
def versions_built(docker_client, web_image):  # noqa: F811
    """``REPOSITORY:1`` to ``:4`` (2 fails at start, 4 fails only as the real container)."""
    for version, start in STARTS.items():
        dockerfile = f'FROM {web_image}\nCMD ["sh", "-c", "{start}"]\n'
        derived_image(docker_client, f"{REPOSITORY}:{version}", dockerfile)
    return REPOSITORY


def _profile(tmp_path, version: str, ports: tuple[int, int]) -> str:
    path = tmp_path / f"{STACK}.yaml"
    path.write_text(
        f"""\
name: {STACK}
models:
  tiny: {{path: bundled:tiny-fp32}}
gateway: {{port: {ports[0]}, bind: [127.0.0.1, stack-gateway]}}
services:
  web:
    kind: container
    image: {REPOSITORY}:1
    version: "{version}"
    image_policy: pull
    ports: ["127.0.0.1:{ports[1]}:8080"]
    volumes: ["data:/data"]
    health: {{http: /health, body: ok, timeout: 60}}
volumes:
  data: {{}}
"""
    )
    return str(path)


def _data(docker_client) -> list[str]:
    out = docker_client.containers.run(
        f"{REPOSITORY}:1",
        ["cat", "/data/migrations", "/data/notes"],
        volumes={VOLUME: {"bind": "/data"}},
        remove=True,
        entrypoint=[],
        network_mode="none",
    )
    return out.decode().split()


def _leftovers(docker_client) -> list[str]:
    selector = {"label": UPGRADE}
    return [c.name for c in docker_client.containers.list(all=True, filters=selector)] + [
        v.name for v in docker_client.volumes.list(filters=selector)
    ]


def _running(docker_client):
    container = docker_client.containers.get(CONTAINER)
    return container.status, container.labels.get(VERSION), container.image.tags


def test_a_working_step_carries_the_data_and_a_failing_one_changes_nothing(
    tmp_path, ops_home, docker_client, versions_built, capsys
):
    ports = (free_port(), free_port())
    path = _profile(tmp_path, "1", ports)
    try:
        assert main(["up", path]) == 0, capsys.readouterr().err
        assert _running(docker_client)[:2] == ("running", "1")
        docker_client.containers.get(CONTAINER).exec_run(["sh", "-c", "echo a-users-note > /data/notes"])
        capsys.readouterr()

        # A working step: the new version migrates a copy first, then the real data, once.
        assert main(["upgrade", path, "web", "--to", "3", "--json"]) == 0, capsys.readouterr().err
        out, err = capsys.readouterr()
        report = json.loads(out)
        assert (report["from_version"], report["to_version"], report["image"]) == (
            "1",
            "3",
            f"{REPOSITORY}:3",
        )
        assert list(report["steps"]) == ["backup", "image", "copy", "trial", "switch"]
        if hasattr(importlib.import_module("ops.backup"), "take"):  # `ops backup` is there
            backup = Path(report["backup"])
            assert backup.is_file() and backup.parent == ops_home / "stacks" / STACK / "backups"
            assert oct(backup.stat().st_mode & 0o777) == "0o600"
        assert "trying it on a copy of its data" in err and "now runs 3" in err
        assert _running(docker_client) == ("running", "3", [f"{REPOSITORY}:3"])
        # The trial's migration ran on the scratch copy, which is gone; the real data migrated once.
        assert _data(docker_client) == ["migrated-1", "migrated-3", "a-users-note"]
        assert _leftovers(docker_client) == []
        assert report["kept_in"] and json.loads(Path(report["kept_in"]).read_text())["web"] == {
            "version": "3",
            "over": "1",
        }
        # The choice is kept: `ops up` with the profile unchanged keeps version 3 as it is.
        assert main(["up", path]) == 0
        assert "web: keep (unchanged and running)" in capsys.readouterr().err
        assert _running(docker_client)[:2] == ("running", "3")

        # A failing step: refused in one line, version 3 still runs on the untouched data.
        assert main(["upgrade", path, "web", "--to", "2"]) == 1
        err = capsys.readouterr().err
        first = err.split("error: ", 1)[1].splitlines()[0]
        assert "upgrade of web to 2 refused: it failed on a copy of the data" in first
        assert "3 still runs on its data" in first and "hint:" in err
        assert _running(docker_client) == ("running", "3", [f"{REPOSITORY}:3"])
        assert _data(docker_client) == ["migrated-1", "migrated-3", "a-users-note"]
        assert _leftovers(docker_client) == []

        # Fine on the copy, failing on the real data: the data is put back, version 3 runs again.
        assert main(["upgrade", path, "web", "--to", "4"]) == 1
        err = capsys.readouterr().err
        assert "upgrade of web to 4 refused: it failed after the switch" in err
        assert "putting 3 back" in err and "3 runs again on its data as it was" in err
        assert _running(docker_client) == ("running", "3", [f"{REPOSITORY}:3"])
        assert _data(docker_client) == ["migrated-1", "migrated-3", "a-users-note"]
        assert _leftovers(docker_client) == []
        assert [
            c.name for c in docker_client.containers.list(all=True, filters={"label": f"ops.stack={STACK}"})
        ] == [CONTAINER]

        # Bad input changes nothing either.
        assert main(["upgrade", path, "web", "--to", "3"]) == 2
        assert "already runs version 3" in capsys.readouterr().err

        # What a killed upgrade left behind, the next `ops up` points out (and touches nothing).
        dead = f"ops-upgrade-{STACK}-web-dead0000-keep0"
        docker_client.volumes.create(dead, labels={UPGRADE: "dead0000"})
        try:
            assert main(["up", path]) == 0
            assert f"warning: an interrupted upgrade left {dead}" in capsys.readouterr().err
        finally:
            docker_client.volumes.get(dead).remove()

        # `ops up` notices a version changed in the profile and goes the guarded way: refused too.
        path = _profile(tmp_path, "2", ports)
        assert main(["up", path]) == 1
        err = capsys.readouterr().err
        assert "the profile says version 2, it runs 3" in err and "refused" in err
        assert "services.web.version back to 3" in err
        assert _running(docker_client) == ("running", "3", [f"{REPOSITORY}:3"])
        assert _data(docker_client) == ["migrated-1", "migrated-3", "a-users-note"]
        assert _leftovers(docker_client) == []
    finally:
        main(["down", path, "--volumes", "--yes"])
    assert VOLUME not in {v.name for v in docker_client.volumes.list()}


# --- The real Open WebUI: 0.12.3 -> 0.12.4 -------------------------------------------------------

OWUI_STACK = "upg-owui"
OLD, NEW = "0.12.3", "0.12.4"


def test_open_webui_upgrade_keeps_users_and_chats(tmp_path, ops_home, docker_client, base_image, capsys):
    """The first run on a machine builds Open WebUI 0.12.3 from PyPI (about 10 minutes); 0.12.4 is
    the recipe's default, whose earlier build (``ops-open-webui:local``) is tagged, not rebuilt."""
    import httpx

    from ops import plan as stack_plan
    from ops import versions
    from ops.secrets import Secret
    from ops.services import Account, openwebui
    from ops.services.openwebui_users import ACCOUNTS
    from ops.stack import GATEWAY_KEY
    from ops.state import StackState

    ui_port = free_port()
    path = tmp_path / f"{OWUI_STACK}.yaml"
    profile = f"""\
name: {OWUI_STACK}
models:
  tiny: {{path: bundled:tiny-fp32}}
gateway: {{port: {free_port()}, bind: [127.0.0.1, stack-gateway]}}
services:
  open-webui:
    kind: open-webui
    version: "{OLD}"
    ports: ["127.0.0.1:{ui_port}:8080"]
    volumes: ["data:/app/backend/data"]
    health: {{http: /health, body: "true", timeout: 600}}
volumes:
  data: {{}}
"""
    path.write_text(profile)
    url = f"http://127.0.0.1:{ui_port}"
    container = f"ops-{OWUI_STACK}-open-webui"
    try:
        assert main(["up", str(path)]) == 0, capsys.readouterr().err
        assert docker_client.containers.get(container).labels.get(VERSION) == OLD
        assert httpx.get(f"{url}/api/version", timeout=10).json()["version"] == OLD
        # People and their chats, made with the old version.
        plan = stack_plan.load(str(path), ask_catalog=False)
        state = StackState.for_stack(OWUI_STACK)
        ctx = plan.wiring(state.secrets, state.secrets.get_or_create(GATEWAY_KEY)).for_service("open-webui")
        people = [Account(f"P{i}", f"p{i}@{OWUI_STACK}.test", Secret(f"pw-{i}-long-enough")) for i in (1, 2)]
        ACCOUNTS.create(ctx, url, people)
        chats = {}
        for person in people:
            token = openwebui.sign_in(url, person.email, person.password)
            headers = {"authorization": f"Bearer {token}"}
            body = {"chat": {"title": f"chat of {person.name}", "messages": []}}
            created = httpx.post(f"{url}/api/v1/chats/new", json=body, headers=headers, timeout=30)
            assert created.status_code == 200, created.text
            chats[person.email] = created.json()["id"]
        capsys.readouterr()

        assert main(["upgrade", str(path), "open-webui", "--to", NEW, "--json"]) == 0, capsys.readouterr().err
        out, err = capsys.readouterr()
        report = json.loads(out)
        with capsys.disabled():
            print(f"\nopen-webui {OLD} -> {NEW}: {report['seconds']} s, steps {report['steps']}")
        assert report["image"] == f"ops-open-webui:{NEW}" and "its chain works on the copy" in err
        running = docker_client.containers.get(container)
        assert running.labels.get(VERSION) == NEW and f"ops-open-webui:{NEW}" in running.image.tags
        assert httpx.get(f"{url}/api/version", timeout=10).json()["version"] == NEW
        # The same people sign in and find their chats.
        for person in people:
            token = openwebui.sign_in(url, person.email, person.password)
            headers = {"authorization": f"Bearer {token}"}
            got = httpx.get(f"{url}/api/v1/chats/{chats[person.email]}", headers=headers, timeout=30)
            assert got.status_code == 200 and got.json()["title"] == f"chat of {person.name}"
        assert {p.email for p in people} <= set(ACCOUNTS.existing(ctx, url))
        assert _leftovers(docker_client) == []

        # The profile says 0.12.4 itself now: `ops up` keeps the container and forgets the kept choice.
        path.write_text(profile.replace(f'version: "{OLD}"', f'version: "{NEW}"'))
        assert main(["up", str(path)]) == 0
        assert "open-webui: keep (unchanged and running)" in capsys.readouterr().err
        assert versions.read_overrides(state.root / versions.OVERRIDES_FILE) == {}
        # And back to 0.12.3 in the profile: `ops up` goes the guarded way (a downgrade).
        path.write_text(profile)
        assert main(["up", str(path)]) == 0
        err = capsys.readouterr().err
        assert f"the profile says version {OLD}, it runs {NEW}: upgrading it the guarded way" in err
        assert f"{OLD}: its chain works on the copy" in err and f"now runs {OLD}" in err
        assert "open-webui: keep (unchanged and running)" in err  # reconcile found it done
        assert docker_client.containers.get(container).labels.get(VERSION) == OLD
        assert httpx.get(f"{url}/api/version", timeout=10).json()["version"] == OLD
        for person in people:
            token = openwebui.sign_in(url, person.email, person.password)
            headers = {"authorization": f"Bearer {token}"}
            got = httpx.get(f"{url}/api/v1/chats/{chats[person.email]}", headers=headers, timeout=30)
            assert got.status_code == 200 and got.json()["title"] == f"chat of {person.name}"
        backups = sorted((state.root / "backups").glob("*.backup.tgz"))
        assert len(backups) == 2  # one before each upgrade
        assert _leftovers(docker_client) == []
    finally:
        main(["down", str(path), "--volumes", "--yes"])
