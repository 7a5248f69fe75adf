"""A profile chooses how each local model is served: ``serve: batching | foundry`` and the engine's ``batch:`` limits."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ops.batching.limits import Limits
from ops.models.batching import limits_of
from ops.profiles.schema import DEFAULT_SERVE, BatchSpec, ModelSpec


def test_a_local_model_is_served_by_the_default_path_unless_the_profile_says():
    assert ModelSpec(recipe="smollm2-135m-instruct").provider == DEFAULT_SERVE
    assert ModelSpec(path="bundled:tiny-fp32", serve="foundry").provider == "foundry"
    assert ModelSpec(catalog="phi-4-mini", serve="batching").provider == "batching"
    assert ModelSpec(url="https://example.invalid/v1").provider == "openai"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"url": "https://x.invalid/v1", "serve": "batching"},
            "`serve:` and `batch:` are for models this machine runs",
        ),
        (
            {"url": "https://x.invalid/v1", "batch": {"lanes": 2}},
            "`serve:` and `batch:` are for models this machine runs",
        ),
        (
            {"path": "bundled:tiny-fp32", "serve": "foundry", "batch": {"lanes": 2}},
            "goes with `serve: batching`",
        ),
        ({"path": "bundled:tiny-fp32", "serve": "vllm"}, "Input should be 'batching' or 'foundry'"),
        ({"path": "bundled:tiny-fp32", "batch": {"lanes": 0}}, "greater than or equal to 1"),
        ({"path": "bundled:tiny-fp32", "batch": {"max_batch": 65}}, "less than or equal to 64"),
        ({"path": "bundled:tiny-fp32", "batch": {"queue": -1}}, "greater than or equal to 0"),
        ({"path": "bundled:tiny-fp32", "batch": {"kv_cache_mb": 0}}, "greater than 0"),
        ({"path": "bundled:tiny-fp32", "batch": {"lane": 2}}, "Extra inputs are not permitted"),
    ],
)
def test_bad_serve_settings_are_refused_with_what_to_do(fields, message):
    with pytest.raises(ValidationError, match=message):
        ModelSpec(**fields)


def test_without_batch_settings_the_engine_gets_its_measured_defaults():
    assert limits_of(None) == Limits()
    assert limits_of(BatchSpec()) == Limits()


def test_each_batch_setting_reaches_the_engines_limits():
    limits = limits_of(BatchSpec(max_batch=2, lanes=3, queue=5, kv_cache_mb=256))
    assert (limits.max_batch, limits.lanes, limits.max_queue, limits.kv_cache_mb) == (2, 3, 5, 256)
    assert limits.gather_s == Limits().gather_s  # not a profile setting


def test_a_serve_change_restarts_the_host(tmp_path):
    """What the host serves is part of its fingerprint: changing the path replaces the host."""
    from ops import plan as stack_plan
    from ops.host.config import HostConfig

    def fingerprint(serve: str) -> str:
        path = tmp_path / "p.yaml"
        path.write_text(
            f"name: p\nmodels:\n  tiny: {{path: 'bundled:tiny-fp32', serve: {serve}}}\nservices: {{}}\n"
        )
        return HostConfig.from_plan(
            stack_plan.load(str(path), ask_catalog=False), ["127.0.0.1"]
        ).fingerprint()

    assert fingerprint("batching") != fingerprint("foundry")


# --------------------------------------------------------------------------------------------- catalog models on the engine


class FakeCatalogModel:
    def __init__(self, folder, cached: bool):
        self.folder, self.is_cached, self.downloads = folder, cached, 0

    def download(self, report):
        report(100.0)
        self.downloads += 1
        self.is_cached = True

    def get_path(self) -> str:
        return str(self.folder)


class FakeManager:
    def __init__(self, models):
        self.catalog = self
        self.models = models

    def get_model(self, alias):
        return self.models.get(alias)


def foundry_with(monkeypatch, models):
    from ops.models.foundry import FoundryProvider

    found = FoundryProvider(data_dir=None, logs_dir=None, web_url=None)
    monkeypatch.setattr(FoundryProvider, "start", lambda self: None)
    monkeypatch.setattr(FoundryProvider, "manager", FakeManager(models))
    return found


def test_a_catalog_model_on_the_engine_is_downloaded_by_foundry_then_served_from_its_folder(monkeypatch):
    """Foundry finds and caches it (no load: it would sit in memory twice); the engine serves the folder."""
    import httpx

    from ops import paths
    from ops.models.batching import BatchingProvider

    model = FakeCatalogModel(paths.bundled_model("tiny-fp32"), cached=False)
    found = foundry_with(monkeypatch, {"phi-4-mini": model})
    progress = []
    engine = BatchingProvider(foundry=lambda: found)
    try:
        route = engine.prepare(
            "phi", ModelSpec(catalog="phi-4-mini"), None, lambda *a: progress.append(a[1:])
        )
        assert model.downloads == 1 and (1.0, "downloading") in progress
        assert (route.provider, route.model_id, route.tools) == ("batching", "phi", False)
        body = {
            "model": "phi",
            "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 4,
            "temperature": 0,
        }
        answer = httpx.post(f"{route.base_url}/chat/completions", json=body, timeout=60).json()
        assert answer["usage"]["completion_tokens"] > 0
        engine.unload("phi")  # frees the engine; load brings it back from the same folder
        assert httpx.post(f"{route.base_url}/chat/completions", json=body, timeout=60).status_code == 404
        engine.load("phi")
        assert httpx.post(f"{route.base_url}/chat/completions", json=body, timeout=60).status_code == 200
    finally:
        engine.close()


def test_a_catalog_alias_foundry_does_not_know_is_one_line_with_a_hint(monkeypatch):
    from ops.errors import ModelError

    found = foundry_with(monkeypatch, {})
    with pytest.raises(ModelError, match="'nope' is not in the Foundry catalog") as raised:
        found.fetch("x", ModelSpec(catalog="nope"), lambda *a: None)
    assert "ops model list" in raised.value.hint


def test_the_engine_serves_chat_models_only():
    from ops.errors import ModelError
    from ops.models.batching import BatchingProvider

    with pytest.raises(ModelError, match="chat models only") as raised:
        BatchingProvider().prepare("e", ModelSpec(path="bundled:tiny-fp32", task="embeddings"), None, print)
    assert raised.value.hint == "add `serve: foundry` to this model in the profile"


def test_doctor_asks_for_foundry_registrations_only_of_models_on_foundrys_path(tmp_path):
    from ops.doctor.context import DoctorContext
    from ops.doctor.models import RegisteredCheck
    from ops.models.foundry import local_model_id

    path = tmp_path / "p.yaml"
    path.write_text(
        "name: p\nmodels:\n"
        "  a: {path: 'bundled:tiny-fp32'}\n"
        "  f: {path: 'bundled:tiny-int4', serve: foundry}\n"
        "services: {}\n"
    )
    ctx = DoctorContext(str(path))
    registered: list[dict] = []
    ctx.once("foundry", lambda: {"ok": True, "registered": registered})
    outcome = RegisteredCheck().run(ctx)
    assert outcome.status == "warn" and outcome.detail == "not registered yet: f"  # a is not asked for
    registered.append({"id": local_model_id("f", ctx.loaded.model_dirs["f"])})
    ctx2 = DoctorContext(str(path))
    ctx2.once("foundry", lambda: {"ok": True, "registered": registered})
    assert RegisteredCheck().run(ctx2).detail.startswith("f as f-")
