"""``up``, ``down``, ``restart``: a stack's whole life, as library calls the CLI and the pytest plugin share.

Each takes a resolved :class:`~ops.plan.StackPlan`. ``up`` decides everything it can before
changing anything (models, secrets, Docker reachable, ports free or ours, images), prints its
plan, then starts the model host and reconciles the containers, and returns only when every
service is ready and the chain works. Read-only views (``status``, ``images``) are in
:mod:`ops.inventory`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ops import exposure, interrupt, labels, participants, reconcile, upgrade, volumes
from ops.errors import ConflictError, DockerError, Interrupted, OpsError, UsageError
from ops.host import ports, process
from ops.host.config import HostExposure
from ops.images.service import ensure_service_image
from ops.locks import file_lock
from ops.models.recipes import build as recipe_build
from ops.network import ensure_network, host_reach, network_name
from ops.plan import ModelPlan, StackPlan
from ops.services import StackContext
from ops.services.spec import ContainerSpec
from ops.settings import Settings
from ops.stack import GATEWAY_KEY, SERVICE_KEY_PREFIX, SETUP_DONE_PREFIX, prepare_state, service_key
from ops.state import StackState
from ops.tls import Authority

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
    #: With ``expose:``: each exposed service (and ``gateway``) -> its https URL, and the stack's CA.
    exposed: dict[str, str] = field(default_factory=dict)
    authority: Authority | None = None


def stack_lock(state: StackState):
    """Serialise ``up`` and ``down`` of one stack across processes."""
    return file_lock(state.root / "up.lock")


def context(plan: StackPlan, state: StackState, models: tuple[str, ...] | None = None) -> StackContext:
    """The wiring context for the stack's services; ``models`` default to the aliases the gateway serves."""
    return plan.wiring(state.secrets, state.secrets.get_or_create(GATEWAY_KEY), models)


def revoke_keys(state: StackState, plan: StackPlan) -> list[str]:
    """Delete the gateway keys of services the plan does not run (removed or disabled); returns their names.

    The host reads the secrets store again when it changes: such a key is refused from then on.
    """
    wanted = {service_key(name) for name in plan.enabled}
    return state.secrets.delete(
        *(k for k in state.secrets.with_prefix(SERVICE_KEY_PREFIX) if k not in wanted)
    )


def preflight(client, plan: StackPlan) -> None:
    """Before any change: every published port is free or already ours, and Docker has disk space."""
    ours = {
        (port.host_ip, port.host_port)
        for container in reconcile.containers(client, plan.name).values()
        for port in reconcile.published_ports(container)
    }
    for name, service in plan.enabled.items():
        for port in service.ports:
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
                hint="free some space (`ops images prune` removes what ops builds left behind) and retry",
            )


def up(
    plan: StackPlan,
    settings: Settings | None = None,
    say: Say = lambda _: None,
    host_timeout: float = 900,
    build_progress: Callable[[str], recipe_build.Progress] | None = None,
) -> UpReport:
    """Bring the stack up; idempotent. Raises :class:`OpsError` subclasses with hints.

    Recipe models missing from the model cache are built first (``build_progress(alias)`` reports
    each build's steps), before anything starts: a failed build leaves nothing half-started.
    Ctrl-C stops every wait at once (:mod:`ops.interrupt`) and raises :class:`Interrupted`
    saying what runs; nothing is removed (a later ``up`` finishes, ``down`` removes).
    """
    with interrupt.watching():
        try:
            return _up(plan, settings, say, host_timeout, build_progress)
        except KeyboardInterrupt:
            interrupt.REQUESTED.set()
            raise interrupted(plan, settings) from None


def interrupted(plan: StackPlan, settings: Settings | None = None) -> Interrupted:
    """The error for a Ctrl-C during ``up``: what is left running, and what to do."""
    settings = settings or Settings.from_env()
    left = []
    with contextlib.suppress(Exception):
        host = process.status(StackState.for_stack(plan.name, settings), timeout=0.5)
        if host.running and host.info:
            ready = host.health is not None and host.health.get("status") == "ok"
            left.append(f"model host (pid {host.info.pid}{'' if ready else ', loading'})")
    if plan.enabled:
        with contextlib.suppress(Exception):
            from ops.docker_engine import connect

            for name, container in sorted(reconcile.containers(connect(), plan.name).items()):
                health = (container.attrs.get("State", {}).get("Health") or {}).get("Status")
                left.append(f"{name} ({container.status}{', ' + health if health else ''})")
    where = f"left as they are: {', '.join(left)}" if left else "nothing of it runs"
    return Interrupted(
        f"interrupted: ops up {plan.name} stopped waiting; {where}",
        hint=f"run `ops up {plan.name}` again to finish, or `ops down {plan.name}` to remove it",
    )


def _up(
    plan: StackPlan,
    settings: Settings | None,
    say: Say,
    host_timeout: float,
    build_progress: Callable[[str], recipe_build.Progress] | None,
) -> UpReport:
    started = time.monotonic()
    settings = settings or Settings.from_env()
    if plan.expose is not None:  # before anything is built or started
        exposure.check_address(plan.expose.address)
    for m in plan.models:
        say(f"model {m.alias}: {m.source} {m.where}" if m.use else f"model {m.alias}: {m.reason}")
    for alias, result in recipe_build.ensure_models(plan.loaded, settings.cache, build_progress).items():
        if result.built:
            say(f"model {alias}: built in {result.seconds:.0f} s ({result.size_bytes / 1e6:.0f} MB)")
    state = prepare_state(plan.name, settings)
    for name in sorted(plan.disabled):
        say(f"{name}: disabled in the profile (enabled: false), not started")
    client = None
    if plan.enabled:
        from ops.docker_engine import connect

        client = connect(work_timeout=WORK_TIMEOUT)
    with stack_lock(state):
        if client is not None:
            preflight(client, plan)
        reach = host_reach(plan.gateway.bind, plan.name, client)
        if reach.notice:
            say(reach.notice)
        host_expose, authority = (
            HostExposure.prepare(plan.expose, state.root) if plan.expose else (None, None)
        )
        # The host loads models while the containers start: neither needs the other to become ready.
        pool = concurrent.futures.ThreadPoolExecutor(1)
        host_future = pool.submit(
            process.start, plan, state, list(reach.addresses), host_timeout, _watcher(say), host_expose
        )
        reports: list[ServiceReport] = []
        chain: dict[str, str] = {}
        ctx = context(plan, state)
        revoke_keys(state, plan)
        try:
            if client is not None:
                ensure_network(client, plan.name)
                upgrade.guard_versions(client, plan, state, ctx, reach.alias, say)
                the_plan, wanted_specs, images = _reconcile(client, plan, ctx, reach.alias, say)
            else:
                the_plan, wanted_specs, images = None, {}, {}
        finally:
            # Whatever failed above, let the host finish starting (it is not torn down); that failure
            # is the one reported. interrupt.wait: a wait Ctrl-C can interrupt, on Windows too.
            try:
                interrupt.wait([host_future])
            finally:
                pool.shutdown(wait=True)
        info, reused = host_future.result()
        say(f"model host {'already running' if reused else 'started'} (pid {info.pid}) at {plan.gateway.url}")
        changed = not reused or bool(the_plan and the_plan.changes)
        if the_plan is not None:
            verbs = {a.service: a.verb for a in the_plan.actions}
            for name, spec in wanted_specs.items():
                service = plan.services[name]
                reports.append(
                    ServiceReport(name, spec.kind, verbs[name], service.url, spec.image, images[name][2])
                )
                if service.kind.chain and service.url and changed:
                    report = service.kind.chain(ctx.for_service(name), service.url, spec.timeout)
                    chain[name] = report.detail or (
                        f"{len(report.models)} models listed; a chat answered {len(report.answer)} characters"
                    )
                    say(f"{name}: chain works ({chain[name]})")
            for name in _finish_setups(client, plan, ctx, wanted_specs, say):
                spec, service = wanted_specs[name], plan.services[name]
                if service.kind.chain and service.url:
                    service.kind.chain(ctx.for_service(name), service.url, spec.timeout)
                    say(f"{name}: chain works after its setup")
        participants.reconcile(plan, state, say)  # accounts need the services ready
    return UpReport(
        stack=plan.name,
        models=list(plan.models),
        gateway_url=plan.gateway.url,
        host_reused=reused,
        services=reports,
        changed=changed,
        chain=chain,
        seconds=time.monotonic() - started,
        secrets_file=str(state.secrets.path),
        exposed=plan.expose.urls if plan.expose else {},
        authority=authority,
    )


def _reconcile(client, plan: StackPlan, ctx: StackContext, host_alias: str, say: Say):
    """Images, wanted specs, plan, apply: returns (reconcile plan, specs, images).

    ``host_alias`` is what ``host.docker.internal`` maps to in the containers (``""``: the engine's own).
    """
    images = {name: ensure_service_image(client, service, say) for name, service in plan.enabled.items()}
    wanted_specs: dict[str, ContainerSpec] = {}
    volume_labels = dict(plan.volumes)
    for name, service in plan.enabled.items():
        tag, image_id, _source = images[name]
        extra = volumes.declared(client, plan.services[name], image_id)
        for mount in extra:
            volume_labels[mount.source] = {labels.STACK: plan.name, labels.VOLUME: mount.source}
        wanted_specs[name] = service.container(ctx, tag, image_id, host_alias, extra)
    the_plan = reconcile.plan(client, plan.name, wanted_specs)
    for action in the_plan.actions:
        say(f"{action.service}: {action.verb} ({action.reason})")
    # A container about to be made runs as its image's user: its existing volumes become that user's.
    existing = set(reconcile.volumes(client, plan.name))
    for action in the_plan.actions:
        if action.verb in ("create", "replace"):
            volumes.hand_over(client, wanted_specs[action.service], existing, say)
    reconcile.apply(client, the_plan, wanted_specs, say, volume_labels)
    return the_plan, wanted_specs, images


def _finish_setups(
    client, plan: StackPlan, ctx: StackContext, wanted: dict[str, ContainerSpec], say: Say
) -> list[str]:
    """Replace, once, each container whose environment changed because its one-time setup is done.

    A kind may pass what a first start needs in the environment (Open WebUI's admin password) only
    until its chain has seen the setup work (``setup-done:<service>`` in the secrets store): Docker
    users can read a container's environment. Updates ``wanted``; returns the services replaced.
    """
    done = {}
    for name, spec in wanted.items():
        env = plan.services[name].container(ctx).environment
        if env != spec.environment:
            done[name] = dataclasses.replace(spec, environment=env)
    if not done:
        return []
    wanted.update(done)
    the_plan = reconcile.plan(client, plan.name, wanted)
    for action in the_plan.actions:
        if action.service in done:
            say(f"{action.service}: {action.verb} (its setup is done: the environment no longer carries it)")
    reconcile.apply(client, the_plan, wanted, say, dict(plan.volumes))
    return sorted(done)


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


@dataclass(frozen=True)
class DownReport:
    """What ``down`` removed."""

    stack: str
    host_stopped: bool
    containers: list[str]
    network_removed: bool
    volumes: list[str]


def down(
    plan: StackPlan,
    settings: Settings | None = None,
    remove_volumes: bool = False,
    spare_volumes: frozenset[str] = frozenset(),
) -> DownReport:
    """Stop the host, remove the stack's containers and network; volumes only when asked, never ``spare_volumes``."""
    settings = settings or Settings.from_env()
    state = StackState.for_stack(plan.name, settings)
    with stack_lock(state):
        stopped = process.stop(state)
        removed, volumes_removed, network_removed = [], [], False
        client = _client_if_needed(plan)
        if client is not None:
            for name, container in reconcile.containers(client, plan.name).items():
                container.remove(force=True)
                removed.append(name)
            for network in client.networks.list(names=[network_name(plan.name)]):
                if network.attrs.get("Labels", {}).get(
                    labels.STACK
                ) == plan.name or network.name == network_name(plan.name):
                    network.remove()
                    network_removed = True
            if remove_volumes:
                # The one-time setups those volumes held (Open WebUI's admin) must be made again.
                state.secrets.delete(*state.secrets.with_prefix(SETUP_DONE_PREFIX))
                for name, volume in reconcile.volumes(client, plan.name).items():
                    if name in spare_volumes:
                        continue
                    volume.remove(force=True)
                    volumes_removed.append(name)
    return DownReport(plan.name, stopped, sorted(removed), network_removed, sorted(volumes_removed))


def restart(
    plan: StackPlan, service: str | None, settings: Settings | None = None, say: Say = lambda _: None
):
    """Restart one service's container, the model host (``host``), or the whole stack (``None``).

    Returns the :class:`UpReport` when the stack or host was brought up again, else ``None``.
    """
    settings = settings or Settings.from_env()
    if service is None:
        down(plan, settings)
        return up(plan, settings, say=say)
    if service == "host":
        process.stop(StackState.for_stack(plan.name, settings))
        return up(plan, settings, say=say)
    from ops.docker_engine import connect

    found = reconcile.containers(connect(work_timeout=WORK_TIMEOUT), plan.name)
    if service not in found:
        raise UsageError(
            f"stack {plan.name} has no service {service!r}",
            hint=f"services: host, {', '.join(sorted(found))}",
        )
    found[service].restart(timeout=10)
    say(f"{service}: restarted")
    if service in plan.services:
        reconcile.wait_ready(plan.services[service].container(None), found[service], say)
    return None


def _client_if_needed(plan: StackPlan):
    from ops.docker_engine import connect

    try:
        return connect(work_timeout=WORK_TIMEOUT)
    except DockerError:
        if plan.services:
            raise
        return None


def declared_specs(plan: StackPlan, settings: Settings | None = None) -> dict[str, ContainerSpec]:
    """The containers the profile declares, with image names as written (nothing is built or pulled)."""
    settings = settings or Settings.from_env()
    ctx = context(plan, prepare_state(plan.name, settings), tuple(plan.loaded.profile.models))
    return {name: service.container(ctx) for name, service in plan.enabled.items()}
