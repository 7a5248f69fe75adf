"""The Open WebUI service kind: sign-in errors users can act on, and the container's defaults."""

from __future__ import annotations

import httpx
import pytest

from ops import profiles
from ops.errors import OpsError
from ops.plan import resolve
from ops.secrets import Secret, SecretStore
from ops.services import StackContext, openwebui


def test_open_webui_rate_limiting_sign_ins_is_named_with_its_wait(monkeypatch):
    """Open WebUI answers 429 after 15 sign-ins in 3 minutes: the error says so instead of blaming the volume."""
    monkeypatch.setattr(httpx, "post", lambda *a, **k: httpx.Response(429, json={"detail": "Too many"}))
    with pytest.raises(OpsError) as caught:
        openwebui.sign_in("http://127.0.0.1:9", "admin@x.ops.local", Secret("pw"))
    assert caught.value.message.endswith("too many sign-ins in 3 minutes (HTTP 429)")
    assert caught.value.hint.startswith("wait 3 minutes")


@pytest.fixture
def ctx(tmp_path):
    store = SecretStore(tmp_path / "secrets.json")
    return StackContext(
        "demo",
        "http://host.docker.internal:8123/v1",
        Secret("gateway-key-value"),
        store,
        ("tiny",),
        "http://127.0.0.1:8123/v1",
    )


def test_background_generations_are_off_by_default(ctx):
    """Titles, tags, follow-ups and autocomplete would each ask the chat model again, beside the answer."""
    env = openwebui.environment(ctx)
    assert {name: env[name] for name in openwebui.BACKGROUND_TASKS} == {
        "ENABLE_TITLE_GENERATION": "false",
        "ENABLE_TAGS_GENERATION": "false",
        "ENABLE_FOLLOW_UP_GENERATION": "false",
        "ENABLE_AUTOCOMPLETE_GENERATION": "false",
    }
    # Without this, values saved in Open WebUI's database would win over these defaults.
    assert env["ENABLE_PERSISTENT_CONFIG"] == "false"


def test_a_profiles_environment_turns_a_background_generation_back_on(ctx, tmp_path):
    path = tmp_path / "demo.yaml"
    path.write_text(
        "name: demo\n"
        "models:\n"
        "  tiny: {path: bundled:tiny-fp32}\n"
        "services:\n"
        "  open-webui:\n"
        "    kind: open-webui\n"
        "    environment:\n"
        "      ENABLE_TITLE_GENERATION: true\n"
        "      TASK_MODEL_EXTERNAL: tiny\n"
    )
    loaded = profiles.load_path(path)
    spec = resolve(loaded, ask_catalog=False).services["open-webui"].container(ctx)
    env = spec.create_kwargs()["environment"]
    assert env["ENABLE_TITLE_GENERATION"] == "true"  # a YAML boolean, as Open WebUI reads it
    assert env["TASK_MODEL_EXTERNAL"] == "tiny"
    assert env["ENABLE_TAGS_GENERATION"] == env["ENABLE_FOLLOW_UP_GENERATION"] == "false"
    assert env["ENABLE_AUTOCOMPLETE_GENERATION"] == "false"


def test_the_benchmarks_variant_turns_them_on_through_the_profiles_environment(ctx, tmp_path):
    """``ops.bench.openwebui_wait`` writes the profile it brings up with the generations on: the same
    override a person would write, relative paths still naming the original folders."""
    from ops.bench.openwebui_wait import COUNTED, ON, write_variant

    (tmp_path / "profiles" / "notes").mkdir(parents=True)
    path = tmp_path / "profiles" / "demo.yaml"
    path.write_text(
        "models:\n"
        "  tiny: {path: bundled:tiny-fp32}\n"
        "services:\n"
        "  open-webui:\n"
        "    kind: open-webui\n"
        '    volumes: ["./notes:/notes:ro", "data:/app/backend/data"]\n'
        "volumes:\n"
        "  data: {}\n"
    )
    loaded = write_variant(profiles.load_path(path), "open-webui", "tiny", ON, tmp_path / "variant.yaml")
    assert loaded.name == "demo" and loaded.profile.gateway.routing.models[COUNTED].default == ("tiny",)
    spec = resolve(loaded, ask_catalog=False).services["open-webui"].container(ctx)
    env = spec.create_kwargs()["environment"]
    assert {name: env[name] for name in openwebui.BACKGROUND_TASKS} == dict.fromkeys(
        openwebui.BACKGROUND_TASKS, "true"
    )
    assert [(m.kind, m.source) for m in spec.mounts] == [
        ("bind", str(tmp_path / "profiles" / "notes")),
        ("volume", "ops-demo-data"),
    ]
