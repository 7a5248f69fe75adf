"""``up``, ``down``, ``status``: a stack's whole life, as library calls the CLI and the pytest plugin share.

``up`` decides everything it can before changing anything (models, secrets, Docker reachable,
ports free or ours, images), prints its plan, then starts the model host and reconciles the
containers, and returns only when every service is ready and the chain works.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import docker.errors

from ops import reconcile, services
from ops.errors import ConflictError, DockerError, OpsError
from ops.host import ports, process
from ops.locks import file_lock
from ops.models.recipes import build as recipe_build
from ops.network import bind_addresses, ensure_network, network_name
from ops.profiles import LoadedProfile
from ops.services import StackContext
from ops.services import spec as specs_mod
from ops.settings import Settings
from ops.stack import GATEWAY_KEY, LABEL_STACK, ModelPlan, plan_models, prepare_state
from ops.state import StackState

Say = Callable[[str], None]
#: Below this much free space where Docker keeps images and volumes, `ops up` refuses to start.
MIN_FREE_BYTES = 2 * 1024**3
#: Seconds a single Docker request of `up` or `down` may take (removing a large container on a busy machine).
WORK_TIMEOUT = 300.0


@dataclass(frozen=True)
class ServiceReport:
    """One service after ``up``: what was done, and where it answers."""

    service: str
    kind: str
    action: str
    url: str
    image: str
    image_source: str


@dataclass(frozen=True)
class UpReport:
    """What ``up`` did and where everything is."""

    stack: str
    models: list[ModelPlan]
    gateway_url: str
    host_reused: bool
    services: list[ServiceReport]
    changed: bool
    chain: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    secrets_file: str = ""


def stack_lock(state: StackState):
    """Serialise ``up`` and ``down`` of one stack across processes."""
    return file_lock(state.root / "up.lock")


def context(loaded: LoadedProfile, state: StackState, models: tuple[str, ...]) -> StackContext:
    """The wiring context for the stack's services; ``models`` are the aliases the gateway serves."""
    return StackContext(
        stack=loaded.name,
        gateway_port=loaded.profile.gateway.port,
        gateway_key=state.secrets.get_or_create(GATEWAY_KEY),
        secrets=state.secrets,
        models=models,
    )


def preflight(client, loaded: LoadedProfile) -> None:
    """Before any change: every published port is free or already ours, and Docker has disk space."""
    ours = {
        (p.get("HostIp"), int(p.get("HostPort")))
        for c in reconcile.containers(client, loaded.name).values()
        for bindings in (c.attrs.get("HostConfig", {}).get("PortBindings") or {}).values()
        for p in bindings or []
        if p.get("HostPort")
    }
    for name, service in loaded.profile.services.items():
        if not service.enabled:
            continue
        kind = services.get(service.kind)
        for port in service.ports if service.ports is not None else specs_mod.default_ports(kind):
            if (port.host_ip, port.host_port) in ours:
                continue
            try:
                ports.check_free([port.host_ip], port.host_port)
            except ConflictError as exc:
                raise ConflictError(
                    f"service {name}: {exc.message}",
                    hint=f"stop that process, or change services.{name}.ports",
                ) from None
    root = client.info().get("DockerRootDir", "/var/lib/docker")
    with contextlib.suppress(OSError):
        free = shutil.disk_usage(root).free
        if free < MIN_FREE_BYTES:
            raise OpsError(
                f"only {free / 1024**3:.1f} GiB free in {root}, where Docker keeps images and volumes",
                hint="free some space (`docker system prune` removes unused images) and retry",
            )


def up(
    loaded: LoadedProfile,
    settings: Settings | None = None,
    say: Say = lambda _: None,
    host_timeout: float = 900,
    build_progress: Callable[[str], recipe_build.Progress] | None = None,
) -> UpReport:
    """Bring the stack up; idempotent. Raises :class:`OpsError` subclasses with hints.

    Recipe models missing from the model cache are built first (``build_progress(alias)`` reports
    each build's steps), before anything starts: a failed build leaves nothing half-started.
    """
    started = time.monotonic()
    settings = settings or Settings.from_env()
    models = plan_models(loaded, settings)
    for m in models:
        say(f"model {m.alias}: {m.source} {m.where}" if m.use else f"model {m.alias}: {m.reason}")
    for alias, result in recipe_build.ensure_models(loaded, settings.cache, build_progress).items():
        if result.built:
            say(f"model {alias}: built in {result.seconds:.0f} s ({result.size_bytes / 1e6:.0f} MB)")
    state = prepare_state(loaded.name, settings)
    wanted = [n for n, s in loaded.profile.services.items() if s.enabled]
    for name in sorted(set(loaded.profile.services) - set(wanted)):
        say(f"{name}: disabled in the profile (enabled: false), not started")
    client = None
    if wanted:
        from ops.docker_engine import connect

        client = connect(work_timeout=WORK_TIMEOUT)
    with stack_lock(state):
        if client is not None:
            preflight(client, loaded)
        addresses, notice = bind_addresses(loaded.profile.gateway.bind, loaded.name, client)
        if notice:
            say(notice)
        # The host loads models while the containers start: neither needs the other to become ready.
        pool = concurrent.futures.ThreadPoolExecutor(1)
        host_future = pool.submit(
            process.start, loaded, state, addresses, timeout=host_timeout, watch=_watcher(say)
        )
        reports: list[ServiceReport] = []
        chain: dict[str, str] = {}
        try:
            ctx = context(loaded, state, tuple(m.alias for m in models if m.use))
            if client is not None:
                gateway_ip = ensure_network(client, loaded.name)
                the_plan, wanted_specs, images = _reconcile(client, loaded, ctx, wanted, gateway_ip, say)
            else:
                the_plan, wanted_specs, images = None, {}, {}
        except BaseException:
            # Let the host finish starting (it is not torn down), but report the first failure.
            with contextlib.suppress(Exception):
                host_future.result()
            raise
        finally:
            pool.shutdown(wait=True)
        info, reused = host_future.result()
        say(f"model host {'already running' if reused else 'started'} (pid {info.pid}) at {info.url}/v1")
        changed = not reused or bool(the_plan and the_plan.changes)
        if the_plan is not None:
            verbs = {a.service: a.verb for a in the_plan.actions}
            for name, spec in wanted_specs.items():
                url = spec.url
                reports.append(ServiceReport(name, spec.kind, verbs[name], url, spec.image, images[name][2]))
                kind = services.get(spec.kind)
                if kind.chain and url and changed:
                    report = kind.chain(ctx, url, spec.timeout)
                    chain[name] = report.detail or (
                        f"{len(report.models)} models listed; a chat answered {len(report.answer)} characters"
                    )
                    say(f"{name}: chain works ({chain[name]})")
    return UpReport(
        stack=loaded.name,
        models=models,
        gateway_url=f"{info.url}/v1",
        host_reused=reused,
        services=reports,
        changed=changed,
        chain=chain,
        seconds=time.monotonic() - started,
        secrets_file=str(state.secrets.path),
    )


def _reconcile(
    client, loaded: LoadedProfile, ctx: StackContext, wanted: list[str], gateway_ip: str, say: Say
):
    """Images, wanted specs, plan, apply: returns (plan, specs, images)."""
    images = {name: _image(client, loaded, name, say) for name in wanted}
    wanted_specs = {}
    for name in wanted:
        kind = services.get(loaded.profile.services[name].kind)
        env = kind.environment(ctx) if kind.environment else {}
        tag, image_id, _source = images[name]
        wanted_specs[name] = specs_mod.build(loaded, name, env, tag, image_id, host_gateway=gateway_ip)
    the_plan = reconcile.plan(client, loaded.name, wanted_specs)
    for action in the_plan.actions:
        say(f"{action.service}: {action.verb} ({action.reason})")
    reconcile.apply(client, the_plan, wanted_specs, say)
    return the_plan, wanted_specs, images


def _watcher(say: Say):
    seen: dict[str, str] = {}

    def watch(health: dict) -> None:
        if "replacing" in health:
            say(f"model host: restarting, {health['replacing']}")
            return
        for alias, model_state in health.get("models", {}).items():
            detail = health.get("details", {}).get(alias) or model_state
            if seen.get(alias) != detail:
                seen[alias] = detail
                say(f"model {alias}: {detail}")

    return watch


def _image(
    client, loaded: LoadedProfile, name: str, say: Say, policy: str | None = None
) -> tuple[str, str, str]:
    """(tag, image id, where it came from) for a service, by its image policy (or ``policy``)."""
    from ops.images.build import default_ca_bundle
    from ops.images.policy import default_build_tag, ensure_image

    service = loaded.profile.services[name]
    kind = services.get(service.kind)
    image = service.image or kind.image
    recipe = specs_mod.recipe_dir(service, loaded.path.parent)
    ca = service.build.ca_bundle if service.build and service.build.ca_bundle else None
    result = ensure_image(
        client,
        image=image,
        recipe_dir=recipe if recipe and recipe.is_dir() else None,
        policy=policy or service.image_policy,
        build_tag=default_build_tag(recipe) if recipe else f"ops/{service.kind}:local",
        ca_bundle=_path(ca, loaded) or default_ca_bundle(),
        build_args=dict(service.build.args) if service.build else None,
        progress=lambda line: say(f"{name}: {line}"),
    )
    say(f"{name}: image {result.tag} ({result.source}{': ' + result.detail if result.detail else ''})")
    try:
        image_id = client.images.get(result.tag).id
    except docker.errors.ImageNotFound:
        raise DockerError(
            f"{name}: image {result.tag} vanished after it was made", hint="retry `ops up`"
        ) from None
    return result.tag, image_id, result.source


def _path(value, loaded: LoadedProfile):
    if not value:
        return None
    from pathlib import Path

    path = Path(value).expanduser()
    return path if path.is_absolute() else (loaded.path.parent / path).resolve()


@dataclass(frozen=True)
class DownReport:
    """What ``down`` removed."""

    stack: str
    host_stopped: bool
    containers: list[str]
    network_removed: bool
    volumes: list[str]


def down(loaded: LoadedProfile, settings: Settings | None = None, remove_volumes: bool = False) -> DownReport:
    """Stop the host, remove the stack's containers and network; volumes only when asked."""
    settings = settings or Settings.from_env()
    state = StackState.for_stack(loaded.name, settings)
    with stack_lock(state):
        stopped = process.stop(state)
        removed, volumes_removed, network_removed = [], [], False
        client = _client_if_needed(loaded)
        if client is not None:
            for name, container in reconcile.containers(client, loaded.name).items():
                container.remove(force=True)
                removed.append(name)
            for network in client.networks.list(names=[network_name(loaded.name)]):
                if network.attrs.get("Labels", {}).get(
                    LABEL_STACK
                ) == loaded.name or network.name == network_name(loaded.name):
                    network.remove()
                    network_removed = True
            if remove_volumes:
                for name, volume in reconcile.volumes(client, loaded.name).items():
                    volume.remove(force=True)
                    volumes_removed.append(name)
    return DownReport(loaded.name, stopped, sorted(removed), network_removed, sorted(volumes_removed))


def _client_if_needed(loaded: LoadedProfile):
    from ops.docker_engine import connect

    try:
        return connect(work_timeout=WORK_TIMEOUT)
    except DockerError:
        if loaded.profile.services:
            raise
        return None


def declared_specs(
    loaded: LoadedProfile, settings: Settings | None = None
) -> dict[str, specs_mod.ContainerSpec]:
    """The containers the profile declares, with image names as written (nothing is built or pulled)."""
    settings = settings or Settings.from_env()
    ctx = context(loaded, prepare_state(loaded.name, settings), tuple(loaded.profile.models))
    result = {}
    for name, service in loaded.profile.services.items():
        if not service.enabled:
            continue
        kind = services.get(service.kind)
        env = kind.environment(ctx) if kind.environment else {}
        result[name] = specs_mod.build(loaded, name, env, specs_mod.declared_image(loaded, name))
    return result


# Read-only views of a stack live in ops.inventory; re-exported for callers of the lifecycle API.
from ops.inventory import (  # noqa: E402
    ContainerStatus,
    ServiceImage,
    StackStatus,
    build_images,
    images,
    known_stacks,
    status,
)

__all__ = [
    "ContainerStatus",
    "DownReport",
    "ServiceImage",
    "ServiceReport",
    "StackStatus",
    "UpReport",
    "build_images",
    "context",
    "declared_specs",
    "down",
    "images",
    "known_stacks",
    "preflight",
    "stack_lock",
    "status",
    "up",
]
