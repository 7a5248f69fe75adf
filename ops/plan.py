"""The resolved stack plan: a profile read once, right after loading, into every fact the commands use.

A :class:`StackPlan` holds, for each service, a :class:`ResolvedService`: its kind object, its
effective ports (the kind's default when the profile gives none), the image it runs and the tag a
build gives it, the folder it is built from, its mounts (a volume at the kind's data path when
the profile mounts nothing there), its environment and health, and the gateway's addresses and
URLs and the models' plan. ``up``, ``down``, ``status``, ``images``, ``doctor``, ``smoke``,
``export compose`` and the pytest plugin all take a plan; nothing else derives these facts again.

Resolving asks the network only for the models' plan (is the Foundry catalog reachable?), and
only when asked to and the profile has catalog models: at most once per command.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ops import exposure, labels, paths, services, versions
from ops.errors import ModelError
from ops.profiles import LoadedProfile
from ops.profiles.checks import host_path
from ops.profiles.mappings import PortMapping
from ops.profiles.resources import DEFAULT_MEMORY, DEFAULT_PIDS, size_bytes
from ops.profiles.schema import BuildSpec, GatewaySpec, HealthSpec, ModelSpec, ServiceSpec
from ops.services import ServiceKind, StackContext
from ops.services.spec import ContainerSpec, Mount, container_name, volume_name
from ops.settings import Settings

#: How containers name the machine the gateway runs on.
CONTAINER_HOST = "host.docker.internal"


@dataclass(frozen=True)
class ModelPlan:
    """One model of the profile and whether this run serves it."""

    alias: str
    source: str  # "catalog", "local", "recipe" or "remote"
    where: str  # the catalog alias, the local folder (a recipe's in the model cache) or the URL
    use: bool
    reason: str
    spec: ModelSpec | None = field(default=None, compare=False)
    folder: Path | None = None


@dataclass(frozen=True)
class GatewayPlan:
    """The gateway on the host: its port, what it binds, and the URLs clients use."""

    port: int
    bind: tuple[str, ...]  # as the profile writes it; ``stack-gateway`` is resolved at start
    spec: GatewaySpec = field(compare=False)

    @property
    def url(self) -> str:
        """The OpenAI base URL on this machine: loopback when the gateway listens there, else its first address."""
        from ops.profiles.schema import STACK_GATEWAY

        literal = [a for a in self.bind if a != STACK_GATEWAY]
        if not literal or "127.0.0.1" in literal or "0.0.0.0" in literal:
            address = "127.0.0.1"
        elif "::" in literal or "::1" in literal:
            address = "[::1]"
        else:
            address = f"[{literal[0]}]" if ":" in literal[0] else literal[0]
        return f"http://{address}:{self.port}/v1"

    @property
    def container_url(self) -> str:
        """The OpenAI base URL as the stack's containers reach it."""
        return f"http://{CONTAINER_HOST}:{self.port}/v1"


@dataclass(frozen=True)
class ResolvedService:
    """One service of the profile with every default applied."""

    name: str
    stack: str
    kind: ServiceKind
    enabled: bool
    #: The registry reference the profile or kind names ("" for a kind that is only ever built).
    image: str
    #: The tag a local build gets ("" when there is nothing to build from).
    build_tag: str
    #: The folder the image is built from (``build.context`` or the kind's recipe under ``stacks/``).
    recipe_dir: Path | None
    dockerfile: str
    build_args: tuple[tuple[str, str], ...]
    ca_bundle: Path | None
    image_policy: str
    ports: tuple[PortMapping, ...]
    mounts: tuple[Mount, ...]
    environment: tuple[tuple[str, str], ...]
    health: HealthSpec
    health_path: str | None
    depends_on: tuple[str, ...]
    #: Limits (``resources:``, defaulted) and the capabilities given back (``cap_add:``; all are dropped).
    memory_bytes: int = size_bytes(DEFAULT_MEMORY)
    pids: int = DEFAULT_PIDS
    cap_add: tuple[str, ...] = ()
    #: The version it runs (``ops.versions``): a build argument's value or the image's tag; "" for none.
    version: str = ""
    #: The version the profile says (or defaults to); ``version`` differs after ``ops upgrade --to``.
    profile_version: str = ""

    @property
    def container_name(self) -> str:
        """The container's name: ``ops-<stack>-<service>``."""
        return container_name(self.stack, self.name)

    @property
    def declared_image(self) -> str:
        """The image as declared, nothing pulled or built: the named image, else the build tag."""
        return self.image or self.build_tag

    @property
    def url(self) -> str:
        """The service's base URL on this machine (its first published port), or empty."""
        return f"http://{self.ports[0].local_host}:{self.ports[0].host_port}" if self.ports else ""

    def container(
        self,
        wiring: StackContext | None,
        image: str | None = None,
        image_id: str = "",
        host_gateway: str = "host-gateway",
        extra_mounts: tuple[Mount, ...] = (),
    ) -> ContainerSpec:
        """The container ``ops`` wants: the kind's wiring (when given) under the profile's environment."""
        # Each service gets its own gateway key, for inference only (``StackContext.for_service``).
        env = (
            dict(self.kind.environment(wiring.for_service(self.name)))
            if wiring is not None and self.kind.environment
            else {}
        )
        env.update(self.environment)
        return ContainerSpec(
            stack=self.stack,
            service=self.name,
            kind=self.kind.name,
            image=image or self.declared_image,
            ports=self.ports,
            mounts=self.mounts + extra_mounts,
            environment=env,
            depends_on=self.depends_on,
            health=self.health,
            health_path=self.health_path,
            image_id=image_id,
            host_gateway=host_gateway,
            memory_bytes=self.memory_bytes,
            pids=self.pids,
            cap_add=self.cap_add,
            version=self.version,
        )


@dataclass(frozen=True)
class StackPlan:
    """A whole stack, resolved: the one place its facts live."""

    name: str
    path: Path
    loaded: LoadedProfile = field(compare=False, repr=False)
    gateway: GatewayPlan
    services: dict[str, ResolvedService]
    #: Docker volume name -> its labels (the stack's own included), for every volume a service mounts.
    volumes: dict[str, dict[str, str]]
    models: tuple[ModelPlan, ...]
    #: False when the models' plan was made without asking the catalog (catalog models count as used).
    catalog_asked: bool = False
    #: What the room reaches over TLS (``expose:``), or ``None``: everything stays on this machine.
    expose: exposure.ExposePlan | None = None

    @property
    def enabled(self) -> dict[str, ResolvedService]:
        """The services ``up`` starts, in profile order."""
        return {n: s for n, s in self.services.items() if s.enabled}

    @property
    def disabled(self) -> list[str]:
        """Services the profile lists with ``enabled: false``."""
        return [n for n, s in self.services.items() if not s.enabled]

    @property
    def served(self) -> tuple[str, ...]:
        """The model aliases the gateway serves in this run."""
        return tuple(m.alias for m in self.models if m.use)

    def service(self, name: str) -> ResolvedService:
        """The service ``name``; an unknown name lists the profile's services."""
        from ops.errors import UsageError

        try:
            return self.services[name]
        except KeyError:
            raise UsageError(
                f"no service {name!r} in profile {self.name}",
                hint=f"services: {', '.join(self.services) or 'none'}",
            ) from None

    def public_url(self, service: str) -> str:
        """Where people reach ``service`` (or ``gateway``): its https URL on the exposed address, else
        its URL on this machine ("" for a service without a published port)."""
        if self.expose is not None and self.expose.url(service):
            return self.expose.url(service)
        return self.gateway.url if service == exposure.GATEWAY else self.service(service).url

    def wiring(self, secrets, gateway_key, models: tuple[str, ...] | None = None) -> StackContext:
        """What a kind needs to wire its container to this stack."""
        return StackContext(
            stack=self.name,
            gateway_url=self.gateway.container_url,
            gateway_key=gateway_key,
            secrets=secrets,
            models=self.served if models is None else models,
            local_gateway_url=self.gateway.url,
            public_urls=tuple(self.expose.urls.items()) if self.expose else (),
        )


def resolve(loaded: LoadedProfile, settings: Settings | None = None, ask_catalog: bool = True) -> StackPlan:
    """Resolve ``loaded`` once; ``ask_catalog`` asks whether catalog models can be had (else assumes so)."""
    settings = settings or Settings.from_env()
    profile = loaded.profile
    chosen = versions.overrides(loaded.name, settings)  # by `ops upgrade --to`
    resolved = {
        name: versions.resolved(_service(loaded, name, spec), spec.version, chosen.get(name))
        for name, spec in profile.services.items()
    }
    declared_labels = {
        volume_name(loaded.name, name): dict(spec.labels) if spec else {}
        for name, spec in profile.volumes.items()
    }
    volumes: dict[str, dict[str, str]] = {}
    for service in resolved.values():
        for mount in service.mounts:
            if mount.kind == "volume":
                own = {labels.STACK: loaded.name, labels.VOLUME: mount.source}
                volumes[mount.source] = {**declared_labels.get(mount.source, {}), **own}
    gateway = GatewayPlan(profile.gateway.port, tuple(profile.gateway.bind), profile.gateway)
    return StackPlan(
        name=loaded.name,
        path=loaded.path,
        loaded=loaded,
        gateway=gateway,
        services=resolved,
        volumes=volumes,
        models=plan_models(loaded, settings, ask_catalog),
        catalog_asked=ask_catalog,
        expose=exposure.resolve(
            profile.expose,
            [(n, s.ports) for n, s in resolved.items() if s.enabled],
            gateway.port,
            gateway.bind,
        ),
    )


def load(ref: str, settings: Settings | None = None, ask_catalog: bool = True) -> StackPlan:
    """Load the profile ``ref`` (a name or a path) and resolve it."""
    from ops.profiles import load as load_profile

    settings = settings or Settings.from_env()
    return resolve(load_profile(ref, settings), settings, ask_catalog)


def plan_models(loaded: LoadedProfile, settings: Settings, ask_catalog: bool = True) -> tuple[ModelPlan, ...]:
    """Decide which models this run serves; catalog models are skipped (if optional) when it is offline.

    ``ask_catalog`` means the plan is for serving the models: the catalog is asked once, with
    ``OPS_CATALOG_TIMEOUT`` (default 3 s), when the profile has catalog models; and where this machine
    cannot run Foundry Local (Intel macOS), a model it would serve is skipped when optional and
    otherwise stops the run here, in one line, before anything is built or started.
    """
    from ops.models.catalog import check_catalog
    from ops.models.recipes import is_built
    from ops.models.support import foundry_support

    specs = loaded.profile.models
    foundry = None
    # Foundry Local and onnxruntime-genai (the batching engine) have builds for the same platforms.
    if ask_catalog and any(spec.url is None for spec in specs.values()):
        foundry = foundry_support()
    reach = None
    if (
        ask_catalog
        and any(spec.catalog for spec in specs.values())
        and (foundry is None or foundry.available)
    ):
        reach = check_catalog(settings.catalog_timeout, settings.catalog_url)
    plans = []
    for alias, spec in specs.items():
        folder = loaded.model_dirs.get(alias)
        if foundry is not None and not foundry.available and spec.url is None:
            if not spec.optional:
                raise ModelError(f"model {alias!r}: {foundry.reason}", hint=foundry.hint)
            where = str(spec.catalog or folder)
            plans.append(
                ModelPlan(alias, spec.source, where, False, f"skipped: {foundry.reason}", spec, folder)
            )
        elif spec.path:
            plans.append(ModelPlan(alias, "local", str(folder), True, "local folder", spec, folder))
        elif spec.recipe:
            assert folder is not None  # the loader gives every recipe model its cache folder
            built = "built" if is_built(folder) else "to build"
            plans.append(
                ModelPlan(alias, "recipe", str(folder), True, f"recipe {spec.recipe} ({built})", spec, folder)
            )
        elif spec.url:
            plans.append(ModelPlan(alias, "remote", spec.url, True, "OpenAI-compatible server", spec))
        elif reach is None:
            plans.append(ModelPlan(alias, "catalog", str(spec.catalog), True, "catalog (not asked)", spec))
        elif reach.reachable:
            plans.append(ModelPlan(alias, "catalog", str(spec.catalog), True, reach.reason, spec))
        elif spec.optional:
            plans.append(
                ModelPlan(alias, "catalog", str(spec.catalog), False, f"skipped: {reach.reason}", spec)
            )
        else:
            raise ModelError(
                f"model {alias!r} needs the Foundry catalog: {reach.reason}",
                hint="connect to the network, set `optional: true` on the model, or use the offline profile",
            )
    if not any(plan.use for plan in plans):
        raise ModelError(
            f"no model of profile {loaded.name!r} can be served: {plans[0].reason}",
            hint=foundry.hint
            if foundry is not None and not foundry.available
            else "add a local model (e.g. `path: bundled:tiny-fp32`) or use the offline profile",
        )
    return tuple(plans)


def _service(loaded: LoadedProfile, name: str, spec: ServiceSpec) -> ResolvedService:
    from ops.images.policy import default_build_tag

    kind = services.get(spec.kind)
    profile_dir = loaded.path.parent
    recipe = _recipe_dir(spec, kind, profile_dir)
    build = spec.build or BuildSpec()
    ports = tuple(spec.ports) if spec.ports is not None else kind.default_ports
    return ResolvedService(
        name=name,
        stack=loaded.name,
        kind=kind,
        enabled=spec.enabled,
        image=spec.image or kind.image or "",
        build_tag=default_build_tag(recipe) if recipe else "",
        recipe_dir=recipe,
        dockerfile=build.dockerfile,
        build_args=tuple(sorted(build.args.items())),
        ca_bundle=host_path(build.ca_bundle, profile_dir) if build.ca_bundle else None,
        image_policy=spec.image_policy,
        ports=ports,
        mounts=_mounts(loaded.name, name, spec, kind, profile_dir),
        environment=tuple((k, _env_text(v)) for k, v in spec.environment.items()),
        health=spec.health or HealthSpec(),
        health_path=(spec.health.http if spec.health and spec.health.http else kind.health_path),
        depends_on=spec.depends_on,
        memory_bytes=spec.resources.memory_bytes,
        pids=spec.resources.pids,
        cap_add=spec.cap_add,
    )


def _recipe_dir(spec: ServiceSpec, kind: ServiceKind, profile_dir: Path) -> Path | None:
    """The folder the service's image is built from: ``build.context`` or ``stacks/<recipe>``."""
    if spec.build and spec.build.context:
        return host_path(spec.build.context, profile_dir)
    return paths.shipped("stacks") / kind.recipe if kind.recipe else None


def _mounts(
    stack: str, name: str, spec: ServiceSpec, kind: ServiceKind, profile_dir: Path
) -> tuple[Mount, ...]:
    """The profile's mounts, plus a volume at the kind's data path when the profile mounts nothing there."""
    mounts = []
    for mount in spec.volumes:
        if mount.is_bind:
            mounts.append(
                Mount("bind", str(host_path(mount.source, profile_dir)), mount.target, mount.read_only)
            )
        else:
            mounts.append(Mount("volume", volume_name(stack, mount.source), mount.target, mount.read_only))
    if kind.data_path and not any(_covers(m.target, kind.data_path) for m in mounts):
        mounts.append(Mount("volume", default_volume(stack, name), kind.data_path))
    return tuple(mounts)


def _covers(target: str, data_path: str) -> bool:
    """The profile mounts at the data path, above it or inside it: it has taken care of the kind's data."""
    a, b = target.rstrip("/") + "/", data_path.rstrip("/") + "/"
    return a.startswith(b) or b.startswith(a)


def default_volume(stack: str, service: str) -> str:
    """Docker name of the volume a service gets at its kind's data path: ``ops-<stack>-<service>-data``."""
    return f"ops-{stack}-{service}-data"


def _env_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
