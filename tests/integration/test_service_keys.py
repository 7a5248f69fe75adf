"""Each service's gateway key runs models and nothing else; the stack's own key does everything.

The keys are made by ``ops up`` in the stack's secrets store (``gateway-key:<service>``); the host
reads them from there, at start and whenever the store changes, so a key made or deleted while it
runs is let in or refused without a restart.
"""

from __future__ import annotations

import httpx
import pytest

from ops import lifecycle
from ops.plan import resolve
from ops.profiles import load_path
from ops.stack import service_key

from .hosts import RunningHost

CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3}


@pytest.fixture
def host(tmp_path, ops_home):
    running = RunningHost(ops_home, tmp_path, "keys")
    running.start()
    yield running
    running.stop()


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_service_key_can_infer_but_not_administer(host):
    url = host.base_url.removesuffix("/v1")
    # Made after the host started, as `ops up` does for a service it adds: no restart needed.
    key = host.state.secrets.get_or_create(service_key("chat-ui")).reveal()
    assert key != host.key
    assert httpx.get(f"{host.base_url}/models", headers=_bearer(key)).status_code == 200
    assert httpx.get(f"{host.base_url}/models/tiny", headers=_bearer(key)).status_code == 200
    answer = httpx.post(f"{host.base_url}/chat/completions", json=CHAT, headers=_bearer(key), timeout=60)
    assert answer.status_code == 200 and answer.json()["choices"]

    for method, path in (
        ("POST", "/ops/models/tiny-int4/unload"),
        ("POST", "/ops/models/tiny-int4/load"),
        ("GET", "/ops/metrics"),
    ):
        refused = httpx.request(method, url + path, headers=_bearer(key), timeout=30)
        assert refused.status_code == 403, path
        error = refused.json()["error"]
        assert error["code"] == "insufficient_permissions" and "'chat-ui'" in error["message"]
        assert "stack key" in error["message"] and key not in refused.text
    assert httpx.get(url + "/health").json()["models"]["tiny-int4"] == "ready", "nothing was unloaded"

    # The stack's own key (the CLI's, `ops endpoint`'s) does both.
    unloaded = httpx.post(f"{url}/ops/models/tiny-int4/unload", headers=_bearer(host.key), timeout=30)
    assert unloaded.status_code == 200 and unloaded.json()["ready"] is False
    loaded = httpx.post(f"{url}/ops/models/tiny-int4/load", headers=_bearer(host.key), timeout=30)
    assert loaded.status_code == 200 and loaded.json()["ready"] is True
    assert httpx.get(f"{url}/ops/metrics", headers=_bearer(host.key)).status_code == 200
    answer = httpx.post(f"{host.base_url}/chat/completions", json=CHAT, headers=_bearer(host.key), timeout=60)
    assert answer.status_code == 200


def test_a_removed_service_key_stops_working_at_once(host, tmp_path):
    kept = host.state.secrets.get_or_create(service_key("rag")).reveal()
    gone = host.state.secrets.get_or_create(service_key("old-ui")).reveal()
    for key in (kept, gone):
        assert httpx.get(f"{host.base_url}/models", headers=_bearer(key)).status_code == 200

    # `ops up` of a profile that runs only `rag` revokes every other service's key.
    path = tmp_path / "keys-rag.yaml"
    path.write_text(
        host.path.read_text() + "services:\n  rag: {kind: container, image: example.invalid/rag:1}\n"
    )
    plan = resolve(load_path(path), host.settings, ask_catalog=False)
    assert lifecycle.revoke_keys(host.state, plan) == [service_key("old-ui")]
    refused = httpx.get(f"{host.base_url}/models", headers=_bearer(gone))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{host.base_url}/models", headers=_bearer(kept)).status_code == 200

    # Deleting the secret by hand revokes it too.
    host.state.secrets.delete(service_key("rag"))
    answer = httpx.post(f"{host.base_url}/chat/completions", json=CHAT, headers=_bearer(kept), timeout=60)
    assert answer.status_code == 401
    assert httpx.get(f"{host.base_url}/models", headers=_bearer(host.key)).status_code == 200


def test_ops_keys_lists_and_revokes_a_service_key(host, capsys):
    import json

    from ops.cli import main

    key = host.state.secrets.get_or_create(service_key("chat-ui")).reveal()
    assert httpx.get(f"{host.base_url}/models", headers=_bearer(key)).status_code == 200
    assert main(["keys", "list", str(host.path), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["services"] == ["chat-ui"] and key not in json.dumps(listed)

    assert main(["keys", "revoke", str(host.path), "chat-ui"]) == 0
    assert "refused from the next request" in capsys.readouterr().out
    assert httpx.get(f"{host.base_url}/models", headers=_bearer(key)).status_code == 401
    assert httpx.get(f"{host.base_url}/models", headers=_bearer(host.key)).status_code == 200

    # Revoking what is not there is a usage error naming what is.
    assert main(["keys", "revoke", str(host.path), "chat-ui"]) == 2
    err = capsys.readouterr().err
    assert "service 'chat-ui' of stack keys holds no key" in err and "services with a key: none" in err
