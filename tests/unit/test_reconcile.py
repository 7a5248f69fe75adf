"""``ops.reconcile``: plan (what differs), waves (dependency order) and apply (only what the plan says)."""

from __future__ import annotations

import socket
import time

import pytest

from ops import reconcile
from ops.errors import DockerError, ProbeTimeout
from ops.profiles import HealthSpec, PortMapping
from ops.services.spec import ContainerSpec, Mount
from tests.unit.fakedocker import FakeDocker

IMAGE_ID = "sha256:" + "1" * 64
NEW_IMAGE_ID = "sha256:" + "2" * 64


def make_spec(service: str, stack: str = "dev", **fields) -> ContainerSpec:
    """A spec of kind ``container`` (no health path: its probe is the container's own state)."""
    fields.setdefault("kind", "container")
    fields.setdefault("image", "img:1")
    fields.setdefault("image_id", IMAGE_ID)
    fields.setdefault("ports", ())
    fields.setdefault("mounts", ())
    return ContainerSpec(stack=stack, service=service, **fields)


def specs_of(*specs: ContainerSpec) -> dict[str, ContainerSpec]:
    return {s.service: s for s in specs}


@pytest.fixture
def client() -> FakeDocker:
    fake = FakeDocker()
    fake.add_image("img:1", ident=IMAGE_ID)
    fake.add_image("img:2", ident=NEW_IMAGE_ID)
    return fake


def existing(client: FakeDocker, spec: ContainerSpec, running: bool = True):
    """Put ``spec``'s container (and the stack's network) in place as a previous ``up`` left it."""
    if not client.networks.list(names=[spec.network]):
        client.networks.create(spec.network, driver="bridge", labels={"ops.stack": spec.stack})
    container = client.run(**spec.create_kwargs())
    if not running:
        container.stop()
    client.take_events()
    return container


def verbs(the_plan: reconcile.Plan) -> dict[str, str]:
    return {a.service: a.verb for a in the_plan.actions}


# --------------------------------------------------------------------------------------------- plan


def test_plan_creates_everything_on_an_empty_engine(client):
    specs = specs_of(
        make_spec("web", mounts=(Mount("volume", "ops-dev-data", "/data"),)),
        make_spec("db", mounts=(Mount("volume", "ops-dev-db", "/var/lib/db"), Mount("bind", "/tmp", "/x"))),
    )
    the_plan = reconcile.plan(client, "dev", specs)
    assert the_plan.stack == "dev"
    assert [(a.service, a.verb, a.reason) for a in the_plan.actions] == [
        ("web", "create", "missing"),
        ("db", "create", "missing"),
    ]
    assert the_plan.volumes_to_create == ("ops-dev-data", "ops-dev-db")  # sorted, binds are not volumes
    assert the_plan.network_exists is False
    assert the_plan.changes is True
    assert client.events == []  # planning changes nothing


def test_plan_keeps_an_unchanged_running_container(client):
    web = make_spec("web")
    existing(client, web)
    the_plan = reconcile.plan(client, "dev", specs_of(web))
    assert [(a.service, a.verb, a.reason) for a in the_plan.actions] == [
        ("web", "keep", "unchanged and running")
    ]
    assert the_plan.network_exists is True
    assert the_plan.changes is False


def test_plan_starts_a_stopped_container(client):
    web = make_spec("web")
    existing(client, web, running=False)
    (action,) = reconcile.plan(client, "dev", specs_of(web)).actions
    assert (action.verb, action.reason) == ("start", "it is exited")


@pytest.mark.parametrize(
    "change",
    [
        {"image_id": NEW_IMAGE_ID},
        {"environment": {"MODE": "fast"}},
        {"ports": (PortMapping("127.0.0.1", 3001, 8080),)},
        {"host_gateway": "172.30.0.1"},
    ],
    ids=["image", "env", "port", "host-gateway"],
)
def test_plan_replaces_a_container_whose_spec_hash_differs(client, change):
    existing(client, make_spec("web", ports=(PortMapping("127.0.0.1", 3000, 8080),)))
    wanted = make_spec("web", **{"ports": (PortMapping("127.0.0.1", 3000, 8080),), **change})
    (action,) = reconcile.plan(client, "dev", specs_of(wanted)).actions
    assert (action.verb, action.reason) == ("replace", "its spec changed")


def test_plan_replace_wins_over_start_for_a_stopped_changed_container(client):
    existing(client, make_spec("web"), running=False)
    (action,) = reconcile.plan(client, "dev", specs_of(make_spec("web", image_id=NEW_IMAGE_ID))).actions
    assert action.verb == "replace"


def test_plan_removes_services_no_longer_wanted_sorted_after_the_wanted_ones(client):
    for name in ("zeta", "web", "alpha"):
        existing(client, make_spec(name))
    the_plan = reconcile.plan(client, "dev", specs_of(make_spec("web")))
    assert [(a.service, a.verb, a.reason) for a in the_plan.actions] == [
        ("web", "keep", "unchanged and running"),
        ("alpha", "remove", "no longer in the profile"),
        ("zeta", "remove", "no longer in the profile"),
    ]
    assert the_plan.changes is True


def test_plan_never_sees_containers_of_another_stack(client):
    existing(client, make_spec("web", stack="other"))
    existing(client, make_spec("old", stack="other"))
    existing(client, make_spec("old", stack="dev-2"))  # a label prefix is not the same stack
    the_plan = reconcile.plan(client, "dev", specs_of(make_spec("web")))
    assert [(a.service, a.verb) for a in the_plan.actions] == [("web", "create")]


def test_plan_asks_only_for_missing_volumes(client):
    client.volumes.create("ops-dev-data", labels={"ops.stack": "dev"})
    client.volumes.create("ops-dev-cache")  # made by hand, unlabelled: it exists, so it is not created
    specs = specs_of(
        make_spec(
            "web",
            mounts=(
                Mount("volume", "ops-dev-data", "/data"),
                Mount("volume", "ops-dev-cache", "/cache"),
                Mount("volume", "ops-dev-new", "/new"),
            ),
        ),
        make_spec("api", mounts=(Mount("volume", "ops-dev-new", "/new", read_only=True),)),
    )
    assert reconcile.plan(client, "dev", specs).volumes_to_create == ("ops-dev-new",)


def test_plan_is_not_fooled_by_a_network_whose_name_contains_the_stacks(client):
    client.networks.create("ops-dev-2", driver="bridge", labels={"ops.stack": "dev-2"})
    assert reconcile.plan(client, "dev", specs_of(make_spec("web"))).network_exists is False


@pytest.mark.parametrize(
    ("verb", "volumes", "network", "changes"),
    [
        ("keep", (), True, False),
        ("keep", ("ops-dev-data",), True, True),
        ("keep", (), False, True),
        ("start", (), True, True),
        ("create", (), True, True),
        ("replace", (), True, True),
        ("remove", (), True, True),
    ],
)
def test_changes(verb, volumes, network, changes):
    the_plan = reconcile.Plan("dev", (reconcile.Action("web", verb, "why"),), volumes, network)
    assert the_plan.changes is changes


def test_plan_of_no_services_removes_the_whole_stack(client):
    existing(client, make_spec("web"))
    the_plan = reconcile.plan(client, "dev", {})
    assert [(a.service, a.verb) for a in the_plan.actions] == [("web", "remove")]


# --------------------------------------------------------------------------------------------- waves


def test_waves_put_independent_services_in_one_sorted_wave():
    specs = specs_of(make_spec("web"), make_spec("api"), make_spec("db"))
    assert reconcile.waves(specs) == [["api", "db", "web"]]


def test_waves_of_a_chain_are_one_service_each():
    specs = specs_of(
        make_spec("c", depends_on=("b",)),
        make_spec("b", depends_on=("a",)),
        make_spec("a"),
    )
    assert reconcile.waves(specs) == [["a"], ["b"], ["c"]]


def test_waves_ignore_a_dependency_on_a_service_not_wanted():
    specs = specs_of(make_spec("web", depends_on=("disabled",)), make_spec("api"))
    assert reconcile.waves(specs) == [["api", "web"]]


def test_waves_of_a_diamond():
    specs = specs_of(
        make_spec("ui", depends_on=("api", "worker")),
        make_spec("worker", depends_on=("db",)),
        make_spec("api", depends_on=("db",)),
        make_spec("db"),
        make_spec("cache"),
    )
    assert reconcile.waves(specs) == [["cache", "db"], ["api", "worker"], ["ui"]]


def test_waves_of_nothing():
    assert reconcile.waves({}) == []


# --------------------------------------------------------------------------------------------- apply


def run_up(client, specs, stack="dev"):
    said: list[str] = []
    the_plan = reconcile.plan(client, stack, specs)
    result = reconcile.apply(client, the_plan, specs, said.append)
    return the_plan, result, said


def test_apply_on_an_empty_engine_creates_network_volumes_and_containers_then_nothing_changes(client):
    specs = specs_of(
        make_spec("web", mounts=(Mount("volume", "ops-dev-data", "/data"),), depends_on=("api",)),
        make_spec("api"),
    )
    _, result, said = run_up(client, specs)
    assert client.take_events() == [
        ("create-network", "ops-dev"),
        ("create-volume", "ops-dev-data"),
        ("create", "ops-dev-api"),  # waves: api first, web only once api is ready
        ("start", "ops-dev-api"),
        ("create", "ops-dev-web"),
        ("start", "ops-dev-web"),
    ]
    assert sorted(result) == ["api", "web"]
    assert {name: c.name for name, c in result.items()} == {"api": "ops-dev-api", "web": "ops-dev-web"}
    assert "volume ops-dev-data created" in said
    assert "web: created and started" in said
    assert "api: ready (container ops-dev-api)" in said
    network = client.networks.get("ops-dev")
    assert network.attrs["Labels"] == {"ops.stack": "dev"}
    volume = client.volumes.get("ops-dev-data")
    assert volume.attrs["Labels"] == {"ops.stack": "dev", "ops.volume": "ops-dev-data"}
    web = client.containers.get("ops-dev-web")
    assert web.status == "running"
    assert web.labels["ops.spec-hash"] == specs["web"].spec_hash()

    again, _, said = run_up(client, specs)
    assert verbs(again) == {"web": "keep", "api": "keep"}
    assert again.changes is False
    assert again.volumes_to_create == ()
    assert client.events == []
    assert said == ["api: ready (container ops-dev-api)", "web: ready (container ops-dev-web)"]


def test_apply_changes_only_what_the_plan_says(client):
    keep, replace, start, gone = (
        make_spec("keep"),
        make_spec("replace"),
        make_spec("start"),
        make_spec("gone"),
    )
    for spec in (keep, replace, gone):
        existing(client, spec)
    existing(client, start, running=False)
    neighbour = existing(client, make_spec("keep", stack="other"))
    kept_id = client.containers.get("ops-dev-keep").id
    replaced_id = client.containers.get("ops-dev-replace").id

    specs = specs_of(keep, make_spec("replace", environment={"MODE": "new"}), start)
    the_plan, result, said = run_up(client, specs)
    assert verbs(the_plan) == {"keep": "keep", "replace": "replace", "start": "start", "gone": "remove"}

    events = client.take_events()
    assert sorted(events) == sorted(
        [
            ("remove", "ops-dev-gone"),
            ("remove", "ops-dev-replace"),
            ("create", "ops-dev-replace"),
            ("start", "ops-dev-replace"),
            ("start", "ops-dev-start"),
        ]
    )
    assert events[0] == ("remove", "ops-dev-gone")  # removals come before any wave
    assert events.index(("remove", "ops-dev-replace")) < events.index(("create", "ops-dev-replace"))
    assert not [e for e in events if e[1] in ("ops-dev-keep", "ops-other-keep")]
    assert "gone: removed (no longer in the profile)" in said
    assert "replace: replaced and started" in said
    assert "start: started" in said

    assert client.containers.get("ops-dev-keep").id == kept_id
    assert client.containers.get("ops-dev-replace").id != replaced_id
    assert client.containers.get("ops-dev-replace").labels["ops.spec-hash"] == specs["replace"].spec_hash()
    assert client.containers.get("ops-dev-start").status == "running"
    assert [c.name for c in client.containers.list(all=True, filters={"label": "ops.service=gone"})] == []
    neighbour.reload()
    assert neighbour.status == "running"
    assert sorted(result) == ["keep", "replace", "start"]

    again = reconcile.plan(client, "dev", specs)
    assert set(verbs(again).values()) == {"keep"}
    assert again.changes is False


def test_apply_waits_on_a_tcp_health_probe_of_the_published_port(client):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        web = make_spec(
            "web", ports=(PortMapping("127.0.0.1", port, 80),), health=HealthSpec(tcp=True, timeout=5)
        )
        _, _, said = run_up(client, specs_of(web))
    assert f"web: ready (tcp://127.0.0.1:{port})" in said


def test_ctrl_c_stops_every_wait_at_once_and_starts_nothing_more(client):
    """Ctrl-C while a worker thread waits for a probe (here 60 s, asked every 10 s) ends the wait
    within a moment: the main thread no longer waits for the worker, and no later wave starts."""
    import os
    import signal
    import threading

    from ops import interrupt

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: refused at once, every time
    slow = make_spec(
        "api",
        ports=(PortMapping("127.0.0.1", port, 80),),
        health=HealthSpec(tcp=True, timeout=60, interval=10),
    )
    specs = specs_of(slow, make_spec("web", depends_on=("api",)))
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    started = time.monotonic()
    with interrupt.watching():
        with pytest.raises(KeyboardInterrupt):
            timer.start()
            run_up(client, specs)
        assert interrupt.REQUESTED.is_set()
    assert time.monotonic() - started < 2
    assert not interrupt.REQUESTED.is_set()  # later waits of this process are not cancelled
    assert ("create", "ops-dev-web") not in client.events
    assert [t for t in threading.enumerate() if t.name.startswith("ThreadPoolExecutor")] == []


def test_apply_stops_waiting_when_the_container_exits_and_starts_no_later_wave(client):
    client.add_image(
        "crash:1", ident="sha256:" + "3" * 64, exits_with=3, logs=("starting", "boom: no config")
    )
    specs = specs_of(
        make_spec("api", image="crash:1", image_id="sha256:" + "3" * 64),
        make_spec("web", depends_on=("api",)),
    )
    started = time.monotonic()
    with pytest.raises(ProbeTimeout) as caught:
        run_up(client, specs)
    assert time.monotonic() - started < 3  # fail-fast, not the default 300 s timeout
    assert "the container exited (exit code 3, 0 restarts)" in caught.value.message
    assert caught.value.evidence == ["starting", "boom: no config"]
    assert ("create", "ops-dev-web") not in client.events


def test_apply_turns_a_refused_start_into_a_docker_error(client):
    taken = PortMapping("127.0.0.1", 3000, 8080)
    existing(client, make_spec("squatter", stack="other", ports=(taken,)))
    with pytest.raises(DockerError) as caught:
        run_up(client, specs_of(make_spec("web", ports=(taken,))))
    assert caught.value.message.startswith("web: Docker refused to start ops-dev-web: ")
    assert "port is already allocated" in caught.value.message
    assert "a port may be taken" in caught.value.hint
