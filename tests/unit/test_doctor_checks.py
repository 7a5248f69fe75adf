"""The built-in checks' wiring and the helpers they share (no Docker, no network)."""

from __future__ import annotations

import threading

import pytest

import ops.doctor as doctor
from ops.doctor import BaseCheck, register
from ops.doctor.context import DoctorContext
from ops.doctor.images import DOCKER_HUB, registry_of
from ops.doctor.services import error_lines
from ops.errors import UsageError
from ops.profiles.loader import load_leniently
from ops.settings import Settings


class KindsOnly:
    """Just enough context for instantiating the checks: one service of every kind."""

    def service_kinds(self) -> dict[str, str]:
        return {"ui": "open-webui", "rag": "chainlit-rag", "demo": "webgpu-demo", "web": "container"}


def test_every_check_is_named_after_its_group():
    for name in doctor.names():
        assert name.split(".")[0] == doctor.get(name).group, name


def test_every_dependency_names_a_check_that_runs():
    instances = doctor.checks(KindsOnly())
    names = {c.name for c in instances}
    for check in instances:
        for dep in check.depends_on:
            assert dep in names, f"{check.name} depends on {dep}, which does not exist"


def test_per_service_checks_are_named_by_service():
    names = {c.name: c for c in doctor.checks(KindsOnly())}
    assert {"services.container:ui", "services.container:web", "services.container:demo"} <= set(names)
    assert names["chain.open-webui-connection:ui"].depends_on == ("services.container:ui",)
    assert "chain.webgpu-files:demo" in names and "chain.chainlit:rag" in names
    assert "chain.open-webui-connection:web" not in names, "kind-specific checks only for their kind"


def test_the_seed_troubleshooting_steps_have_checks():
    wanted = {
        "gateway.host",  # is the model running
        "gateway.models",  # does /v1/models answer
        "services.container",  # what do the container logs say
        "network.host-gateway",  # ECONNREFUSED from containers
        "chain.open-webui-models",  # the model name is not listed in Open WebUI
        "chain.open-webui-connection",  # settings saved in Open WebUI override the environment
        "chain.webgpu-files",  # WebGPU demo files, MIME types, file:// and COOP/COEP
        "network.ports",
        "gateway.key",
        "host.disk",
        "host.gpu",
    }
    assert wanted <= set(doctor.names())


def test_registering_an_unknown_group_or_getting_an_unknown_name_says_what_is_valid():
    class Odd(BaseCheck):
        name = "odd.one"
        group = "odd"

    with pytest.raises(ValueError, match="unknown group 'odd'"):
        register(Odd)
    with pytest.raises(UsageError) as info:
        doctor.get("host.nothing")
    assert "host.profile" in info.value.hint


@pytest.mark.parametrize(
    "image,registry",
    [
        ("ghcr.io/open-webui/open-webui:v0.12.4", "ghcr.io"),
        ("ops-test-web:2", DOCKER_HUB),
        ("library/debian:bookworm", DOCKER_HUB),
        ("localhost/x:1", "localhost"),
        ("127.0.0.1:5000/x:1", "127.0.0.1:5000"),
    ],
)
def test_registry_of(image, registry):
    assert registry_of(image) == registry


def test_a_missing_model_folder_is_set_aside_not_fatal(tmp_path):
    path = tmp_path / "gone.yaml"
    path.write_text("models: {tiny: {path: ./nowhere}}\n")
    loaded, error, folders = load_leniently(str(path), Settings.from_env())
    assert error is None and loaded is not None
    assert loaded.name == "gone" and loaded.model_dirs["tiny"] == (tmp_path / "nowhere").resolve()
    assert "does not exist" in folders["tiny"]


def test_other_profile_problems_stay_fatal(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("models: {tiny: {path: ./nowhere}}\nservices: {x: {kind: nope}}\n")
    loaded, error, _ = load_leniently(str(path), Settings.from_env())
    assert loaded is None and error is not None


def test_the_context_computes_once_and_remembers_errors():
    ctx = DoctorContext(None)
    calls = []

    def slow():
        calls.append(1)
        return 42

    threads = [threading.Thread(target=lambda: ctx.once("answer", slow)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ctx.once("answer", slow) == 42 and calls == [1]

    def broken():
        calls.append(2)
        raise RuntimeError("no")

    for _ in range(2):
        with pytest.raises(RuntimeError):
            ctx.once("broken", broken)
    assert calls == [1, 2]


class FakeContainer:
    def __init__(self, log: str):
        self.attrs = {"State": {"StartedAt": "2026-11-25T05:32:00.123456789Z"}}
        self.log = log
        self.asked: dict = {}

    def logs(self, **options):
        self.asked = options
        return self.log.encode()


def test_error_lines_skip_a_kinds_benign_errors_and_count_a_traceback_once():
    log = "\n".join(
        [
            "INFO started",
            "2026 | ERROR | open_webui.retrieval: Error loading SentenceTransformer: no snapshot",
            "Traceback (most recent call last):",
            "huggingface_hub.errors.LocalEntryNotFoundError: Cannot find an appropriate cached snapshot",
            "2026 | ERROR | open_webui.main: database is locked",
            "Traceback (most recent call last):",
            "sqlite3.OperationalError: database is locked",
        ]
    )
    container = FakeContainer(log)
    assert error_lines(container, "open-webui") == [
        "2026 | ERROR | open_webui.main: database is locked",
        "sqlite3.OperationalError: database is locked",
    ]
    assert container.asked["since"] > 0, "only lines since the container last started"
    assert len(error_lines(container, "container")) == 4, "other kinds have no benign list"


def test_a_recipe_model_not_built_yet_fails_models_files_with_the_build_command(tmp_path, monkeypatch):
    monkeypatch.setenv("OPS_CACHE", str(tmp_path / "empty-cache"))
    path = tmp_path / "r.yaml"
    path.write_text("models: {small: {recipe: smollm2-135m-instruct, precision: int4}}\n")
    ctx = DoctorContext(str(path), Settings.from_env())
    outcome = doctor.get("models.files")().run(ctx)
    assert outcome.status == "fail"
    assert outcome.detail == "not built yet: small (smollm2-135m-instruct, int4)"
    assert f"`ops model build --profile {ctx.profile_arg}`" in outcome.fix
