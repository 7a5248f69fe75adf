"""The resolved stack plan: every fact about a stack worked out once, and every profile field it carries has an effect."""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path

import pytest

from ops import labels, paths, reconcile
from ops.errors import ProbeTimeout
from ops.host.config import HostConfig
from ops.plan import default_volume, resolve
from ops.profiles import load_path
from ops.profiles.errors import ProfileInvalid


def write(tmp_path: Path, body: str, name: str = "demo") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text("models:\n  tiny: {path: bundled:tiny-fp32}\n" + body)
    return path


def plan_of(tmp_path: Path, body: str, **kwargs):
    return resolve(load_path(write(tmp_path, body)), ask_catalog=False, **kwargs)


def test_a_kind_without_ports_in_the_profile_publishes_its_default_on_loopback(tmp_path):
    plan = plan_of(
        tmp_path, "services:\n  ui: {kind: open-webui}\n  rag: {kind: chainlit-rag, ports: ['9001:8000']}\n"
    )
    ui, rag = plan.services["ui"], plan.services["rag"]
    assert [(p.host_ip, p.host_port, p.container_port) for p in ui.ports] == [("127.0.0.1", 3000, 8080)]
    assert [(p.host_ip, p.host_port, p.container_port) for p in rag.ports] == [("127.0.0.1", 9001, 8000)]
    assert ui.url == "http://127.0.0.1:3000" and rag.url == "http://127.0.0.1:9001"


def test_image_and_build_tag_are_resolved_once(tmp_path):
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile.alt").write_text("FROM scratch\n")
    plan = plan_of(
        tmp_path,
        "services:\n"
        "  ui: {kind: open-webui}\n"
        "  rag: {kind: chainlit-rag}\n"
        "  own: {kind: container, image: 'nginx:1', build: {context: ctx, dockerfile: Dockerfile.alt, args: {A: '1'}}}\n"
        "  plain: {kind: container, image: 'redis:7'}\n",
    )
    ui, rag, own, plain = (plan.services[n] for n in ("ui", "rag", "own", "plain"))
    assert (
        ui.image.startswith("ghcr.io/open-webui/open-webui:")
        and ui.build_tag == f"ops-open-webui:{ui.version}"
    )
    assert ui.recipe_dir == paths.shipped("stacks") / "open-webui" and ui.dockerfile == "Dockerfile"
    assert rag.image == "" and rag.declared_image == rag.build_tag == "ops-chainlit-rag:local"
    assert (
        own.recipe_dir == context and own.dockerfile == "Dockerfile.alt" and own.build_args == (("A", "1"),)
    )
    assert own.declared_image == "nginx:1" and own.build_tag.endswith(":local")
    assert plain.recipe_dir is None and plain.build_tag == "" and plain.declared_image == "redis:7"


def test_a_kind_with_a_data_path_gets_a_volume_there_when_the_profile_mounts_none(tmp_path):
    plan = plan_of(
        tmp_path,
        "services:\n"
        "  ui: {kind: open-webui}\n"
        "  rag: {kind: chainlit-rag, volumes: ['docs:/data']}\n"
        "  web: {kind: webgpu-demo}\n"
        "volumes:\n  docs: {labels: {team: blue}}\n",
    )
    ui = plan.services["ui"]
    assert [(m.kind, m.source, m.target) for m in ui.mounts] == [
        ("volume", default_volume("demo", "ui"), "/app/backend/data")
    ]
    assert default_volume("demo", "ui") == "ops-demo-ui-data"
    # The profile's own mount at the data path wins; no second volume there.
    assert [(m.source, m.target) for m in plan.services["rag"].mounts] == [("ops-demo-docs", "/data")]
    assert plan.services["web"].mounts == ()  # a kind without data keeps none
    # Every volume a service mounts is known with its labels: the stack's, plus the profile's.
    assert plan.volumes["ops-demo-docs"] == {
        "team": "blue",
        labels.STACK: "demo",
        labels.VOLUME: "ops-demo-docs",
    }
    assert plan.volumes["ops-demo-ui-data"] == {labels.STACK: "demo", labels.VOLUME: "ops-demo-ui-data"}


def test_the_container_spec_carries_health_and_the_profiles_environment_over_the_kinds(tmp_path):
    plan = plan_of(
        tmp_path,
        "services:\n"
        "  web:\n    kind: container\n    image: 'x:1'\n    ports: ['8123:80']\n"
        "    environment: {DEBUG: true, N: 3}\n"
        "    health: {http: /ready, interval: 0.7, timeout: 9, status: 204}\n",
    )
    spec = plan.services["web"].container(None, image="x:1", image_id="sha256:abc", host_gateway="172.30.0.1")
    assert spec.environment == {"DEBUG": "true", "N": "3"}
    assert spec.health.interval == 0.7 and spec.timeout == 9
    probe = spec.probe()
    assert probe.target == "GET http://127.0.0.1:8123/ready" and probe.status == 204
    assert spec.create_kwargs()["extra_hosts"] == {"host.docker.internal": "172.30.0.1"}


def test_the_gateways_urls_come_from_the_plan(tmp_path):
    plan = plan_of(tmp_path, "gateway: {port: 8111}\n")
    assert plan.gateway.url == "http://127.0.0.1:8111/v1"
    assert plan.gateway.container_url == "http://host.docker.internal:8111/v1"
    only_bridge = plan_of(tmp_path, "gateway: {port: 8112, bind: ['10.1.2.3', stack-gateway]}\n")
    assert only_bridge.gateway.url == "http://10.1.2.3:8112/v1"


def test_disabled_services_are_resolved_but_not_enabled(tmp_path):
    plan = plan_of(tmp_path, "services:\n  a: {kind: webgpu-demo}\n  b: {kind: open-webui, enabled: false}\n")
    assert list(plan.enabled) == ["a"] and plan.disabled == ["b"]


def test_without_asking_the_catalog_catalog_models_count_as_served(tmp_path, monkeypatch):
    def no_catalog(*_args, **_kwargs):
        raise AssertionError("the catalog was asked")

    monkeypatch.setattr("ops.models.catalog.check_catalog", no_catalog)
    path = write(tmp_path, "")
    path.write_text(path.read_text() + "  big: {catalog: phi-4-mini, optional: true}\n")
    plan = resolve(load_path(path), ask_catalog=False)
    assert plan.served == ("tiny", "big") and not plan.catalog_asked


def test_a_kinds_default_port_is_checked_for_clashes(tmp_path):
    path = write(
        tmp_path,
        "services:\n  ui: {kind: open-webui}\n  other: {kind: container, image: 'x:1', ports: ['3000:80']}\n",
    )
    with pytest.raises(ProfileInvalid) as caught:
        load_path(path)
    (problem,) = caught.value.problems
    assert (
        problem.field == "services.other.ports[0]"
        and "host port 3000 is already used by services.ui.kind" in problem.message
    )
    gateway = write(tmp_path, "gateway: {port: 3000}\nservices:\n  ui: {kind: open-webui}\n", name="g")
    with pytest.raises(ProfileInvalid) as caught:
        load_path(gateway)
    assert "is the gateway's port (the default of kind open-webui" in caught.value.problems[0].message


def test_the_host_configuration_round_trips_and_its_fingerprint_follows_the_models(tmp_path):
    plan = plan_of(tmp_path, "gateway: {port: 8200, aliases: {small: tiny}}\n")
    config = HostConfig.from_plan(plan, ["127.0.0.1"])
    file = tmp_path / "host.json"
    config.write(file)
    assert file.stat().st_mode & 0o777 == 0o600
    again = HostConfig.read(file)
    assert again == config and again.fingerprint() == config.fingerprint()
    assert again.models[0].folder == paths.bundled_model("tiny-fp32") and again.gateway.aliases == {
        "small": "tiny"
    }
    other = HostConfig.from_plan(
        plan_of(tmp_path, "gateway: {port: 8200, default_max_tokens: 5}\n"), ["127.0.0.1"]
    )
    assert other.fingerprint() != config.fingerprint()
    file.write_text('{"version": 99}')
    with pytest.raises(ValueError, match="version"):
        HostConfig.read(file)


class _Counting(http.server.BaseHTTPRequestHandler):
    hits: list[float] = []

    def do_GET(self):  # noqa: N802
        type(self).hits.append(time.monotonic())
        self.send_response(503)
        self.end_headers()

    def log_message(self, *_args):
        pass


class _Running:
    """A container that keeps running: the wait ends only by the probe or the timeout."""

    name = "fake"
    attrs = {"State": {"Status": "running"}, "RestartCount": 0}

    def reload(self):
        pass

    def logs(self, tail=30):
        return b""


@pytest.mark.parametrize("interval, low, high", [(0.6, 2, 3), (0.05, 7, 60)])
def test_health_interval_sets_how_often_up_probes(tmp_path, interval, low, high):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Counting.hits = []
    try:
        port = server.server_address[1]
        plan = plan_of(
            tmp_path,
            f"services:\n  web:\n    kind: container\n    image: 'x:1'\n    ports: ['{port}:80']\n"
            f"    health: {{http: /health, interval: {interval}, timeout: 1.2}}\n",
        )
        with pytest.raises(ProbeTimeout):
            reconcile.wait_ready(plan.services["web"].container(None), _Running(), lambda _: None)
    finally:
        server.shutdown()
    assert low <= len(_Counting.hits) <= high, len(_Counting.hits)


def test_mounts_inside_or_above_the_data_path_count_as_taking_care_of_it(tmp_path):
    plan = plan_of(
        tmp_path,
        "services:\n"
        "  rag: {kind: chainlit-rag, volumes: ['docs:/data/docs', 'index:/data/index']}\n"
        "  ui: {kind: open-webui, volumes: ['./here:/app']}\n"
        "volumes: {docs: {}, index: {}}\n",
    )
    assert [m.target for m in plan.services["rag"].mounts] == ["/data/docs", "/data/index"]
    assert [m.target for m in plan.services["ui"].mounts] == ["/app"]


def test_fields_without_an_effect_are_refused_with_what_to_do(tmp_path):
    path = write(tmp_path, "")
    path.write_text("models:\n  tiny: {path: bundled:tiny-fp32, device: gpu}\n")
    with pytest.raises(ProfileInvalid) as caught:
        load_path(path)
    (problem,) = caught.value.problems
    assert problem.field.startswith("models.tiny") and "`device:` was removed" in problem.message


def test_a_health_port_must_be_published(tmp_path):
    path = write(
        tmp_path,
        "services:\n  w: {kind: container, image: 'x:1', ports: ['8124:80'], health: {tcp: true, port: 81}}\n",
    )
    with pytest.raises(ProfileInvalid) as caught:
        load_path(path)
    (problem,) = caught.value.problems
    assert problem.field == "services.w.health.port" and "published container ports: 80" in problem.hint
    fine = write(
        tmp_path,
        "services:\n  w: {kind: container, image: 'x:1', ports: ['8124:80'], health: {tcp: true, port: 80}}\n",
        "ok",
    )
    assert load_path(fine).profile.services["w"].health.port == 80


def test_resources_and_cap_add_reach_the_container_with_defaults(tmp_path):
    """`resources:` (memory, pids) and `cap_add:` are resolved into the container spec; defaults otherwise."""
    plan = plan_of(
        tmp_path,
        "services:\n"
        "  ui: {kind: open-webui}\n"
        "  w:\n    kind: container\n    image: 'x:1'\n"
        "    resources: {memory: 512m, pids: 128}\n    cap_add: [net_bind_service, CAP_CHOWN]\n",
    )
    ui, w = plan.services["ui"].container(None), plan.services["w"].container(None)
    assert (ui.memory_bytes, ui.pids, ui.cap_add) == (4 * 1024**3, 1024, ())
    assert (w.memory_bytes, w.pids, w.cap_add) == (512 * 1024**2, 128, ("CHOWN", "NET_BIND_SERVICE"))
    kwargs = w.create_kwargs()
    assert kwargs["mem_limit"] == 512 * 1024**2 and kwargs["pids_limit"] == 128
    assert kwargs["cap_drop"] == ["ALL"] and kwargs["cap_add"] == ["CHOWN", "NET_BIND_SERVICE"]
    assert (
        plan_of(tmp_path, "services:\n  ui: {kind: open-webui, resources: {memory: 2g}}\n")
        .services["ui"]
        .container(None)
        .spec_hash()
        != ui.spec_hash()
    )


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ("resources: {memory: lots}", "services.w.resources.memory", "not a size"),
        ("resources: {memory: 1m}", "services.w.resources.memory", "minimum of 6m"),
        ("resources: {pids: 4}", "services.w.resources.pids", "greater than or equal to 32"),
        ("resources: {cpu: 2}", "services.w.resources.cpu", ""),
        ("cap_add: [ALL]", "services.w.cap_add", "not a capability"),
        ("cap_add: ['net bind']", "services.w.cap_add", "not a capability"),
    ],
)
def test_bad_resources_and_capabilities_are_profile_errors(tmp_path, body, field, message):
    path = write(tmp_path, f"services:\n  w: {{kind: container, image: 'x:1', {body}}}\n")
    with pytest.raises(ProfileInvalid) as caught:
        load_path(path)
    (problem,) = caught.value.problems
    assert problem.field == field and message in problem.message
