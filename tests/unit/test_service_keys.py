"""Each service gets its own inference-only gateway key; Open WebUI's admin password leaves its
environment once the admin exists."""

from __future__ import annotations

import httpx
import pytest

from ops import profiles
from ops.errors import OpsError
from ops.host.keys import ServiceKeys
from ops.plan import resolve
from ops.secrets import Secret, SecretStore
from ops.services import StackContext, openwebui
from ops.stack import GATEWAY_KEY, service_key, setup_done

ADMIN = ("WEBUI_ADMIN_EMAIL", "WEBUI_ADMIN_PASSWORD", "WEBUI_ADMIN_NAME")


@pytest.fixture
def store(tmp_path):
    return SecretStore(tmp_path / "secrets.json")


@pytest.fixture
def plan(tmp_path):
    path = tmp_path / "demo.yaml"
    path.write_text(
        "name: demo\n"
        "models:\n"
        "  tiny: {path: bundled:tiny-fp32}\n"
        "services:\n"
        "  chat: {kind: open-webui}\n"
        "  rag: {kind: chainlit-rag}\n"
    )
    return resolve(profiles.load_path(path), ask_catalog=False)


def _ctx(plan, store) -> StackContext:
    return plan.wiring(store, store.get_or_create(GATEWAY_KEY))


def test_each_container_holds_its_own_key_never_the_stack_key(plan, store):
    ctx = _ctx(plan, store)
    chat = plan.services["chat"].container(ctx).environment["OPENAI_API_KEY"]
    rag = plan.services["rag"].container(ctx).environment["OPENAI_API_KEY"]
    assert isinstance(chat, Secret) and isinstance(rag, Secret)
    assert chat == store.get(service_key("chat")) and rag == store.get(service_key("rag"))
    assert len({chat.reveal(), rag.reveal(), store.get(GATEWAY_KEY).reveal()}) == 3
    # Made once, then kept: the container is not replaced on the next run.
    assert plan.services["chat"].container(_ctx(plan, store)).environment["OPENAI_API_KEY"] == chat
    assert ctx.gateway_key == store.get(GATEWAY_KEY), "the stack's own context keeps the stack key"


def test_open_webui_gets_the_admin_password_only_until_the_admin_exists(plan, store):
    first = plan.services["chat"].container(_ctx(plan, store))
    assert first.environment["WEBUI_ADMIN_PASSWORD"] == store.get(openwebui.ADMIN_PASSWORD)
    store.set(setup_done("chat"), "1")
    later = plan.services["chat"].container(_ctx(plan, store))
    assert not set(ADMIN) & set(later.environment)
    assert store.get(openwebui.ADMIN_PASSWORD).reveal() not in str(later.create_kwargs())
    assert later.spec_hash() != first.spec_hash(), "the container is replaced once, without the password"
    assert later.environment["OPENAI_API_KEY"] == first.environment["OPENAI_API_KEY"]


def test_a_sign_in_records_that_the_admin_exists_and_a_refused_one_forgets_it(store, monkeypatch):
    monkeypatch.setattr(httpx, "post", lambda *a, **k: httpx.Response(200, json={"token": "session-token-1"}))
    openwebui.session("http://127.0.0.1:9", store, "a@x", Secret("pw"), service="chat")
    assert store.get(setup_done("chat")) is not None
    store.delete(openwebui.SESSION_TOKEN)
    monkeypatch.setattr(httpx, "post", lambda *a, **k: httpx.Response(400, json={"detail": "no such user"}))
    with pytest.raises(OpsError) as caught:
        openwebui.session("http://127.0.0.1:9", store, "a@x", Secret("pw"), service="chat")
    assert store.get(setup_done("chat")) is None, (
        "the volume (and admin) may be gone: pass the password again"
    )
    assert "passes the admin's password to chat again" in (caught.value.hint or "")


def test_the_host_follows_the_store_without_a_restart(store):
    keys = ServiceKeys(store)
    assert keys(b"Bearer anything") is None
    value = store.get_or_create(service_key("chat")).reveal()
    assert keys(f"Bearer {value}".encode()) == "chat"
    store.get_or_create(GATEWAY_KEY)
    assert keys(b"Bearer " + store.get(GATEWAY_KEY).reveal().encode()) is None, "not a service key"
    assert store.delete(service_key("chat"), "absent") == [service_key("chat")]
    assert keys(f"Bearer {value}".encode()) is None
    assert store.delete("absent") == []


def test_a_corrupt_store_keeps_the_keys_known_before(store):
    value = store.get_or_create(service_key("chat")).reveal()
    keys = ServiceKeys(store)
    store.path.write_text("{not json")
    assert keys(f"Bearer {value}".encode()) == "chat"
